using OnnxLM;

using var model = LanguageModel.Load(SampleModel.Find(args));

// Multiple choice, as lm-evaluation-harness scores it: the log-probability of each answer after the question.
var choices = new[] { " light", " darkness", " a cat" };
var result = await model.ScoreChoicesAsync("And God said, Let there be", choices);
Console.WriteLine("And God said, Let there be ...");
foreach (var (choice, score) in choices.Zip(result.Choices))
{
    Console.WriteLine($"  {choice,-10} log-prob {score.LogProb,9:F3}");
}

Console.WriteLine($"best: {choices[result.Best].Trim()}");

// Perplexity of a text file (default: the first lines of Genesis), windowed over the context.
var text = args.Length > 1 ? await File.ReadAllTextAsync(args[1])
    : "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep.";
var perplexity = await model.ScorePerplexityAsync(text);
Console.WriteLine($"perplexity {perplexity.Perplexity:F2} over {perplexity.TokenCount} tokens, {perplexity.BitsPerByte:F3} bits per byte");
