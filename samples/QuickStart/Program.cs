using OnnxLM;
using OnnxLM.Models;

using var model = LanguageModel.Load(args.Length > 0 ? args[0] : KjvTiny.FolderPath);   // the model the OnnxLM.Models.KjvTiny package copied beside the app
var result = await model.GenerateAsync("And the LORD said unto Moses,", new GenerationOptions { MaxNewTokens = 40, Temperature = 0.7f, TopP = 0.9f, Seed = 1 });
Console.WriteLine($"generated {result.TokenIds.Count} tokens: {result.Text}");

var score = await model.ScoreAsync(context: "And God said,", continuation: " Let there be light");
Console.WriteLine($"log P(\" Let there be light\" | \"And God said,\") = {score.LogProb:F3}, greedy: {score.IsGreedy}");
foreach (var token in score.Tokens)
{
    Console.WriteLine($"  {token.Text,-10} log-prob {token.LogProb,8:F3}  rank {token.Rank}");
}

// Streaming, token by token.
Console.Write("streamed: In the beginning");
await foreach (var token in model.GenerateStreamingAsync("In the beginning", new GenerationOptions { MaxNewTokens = 30 }))
{
    Console.Write(token.Text);
}

Console.WriteLine();
