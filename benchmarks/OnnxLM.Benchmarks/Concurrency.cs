using System.Diagnostics;
using System.Globalization;
using OnnxLM;

/// <summary>
/// concurrency [folder] [new-tokens]: total decode throughput of 1, 4, 8 and 16 concurrent greedy requests of a fixed
/// length (no stop id) in three ways on one CPU model: one at a time (batching off, requests in turn), unbatched
/// concurrent (batching off, each request in its own session, running concurrently on the shared InferenceSession) and
/// batched (continuous batching, one model run per step for all rows), and ONNX Runtime GenAI with one generator per
/// request running concurrently on one model (its C# API has no batching of independent requests). Modes are measured in turn over several rounds
/// (median) so the machine's load hits them alike; the batched tokens are checked identical to one at a time.
/// </summary>
internal static class Concurrency
{
    public static async Task<int> RunAsync(string folder, int newTokens)
    {
        string[] texts =
        [
            "In the beginning", "And God said", "The LORD is my shepherd; I shall not want.", "Blessed are the",
            "And it came to pass, when the king heard the words of the book of the law, that he rent his clothes.",
            "Then Jesus said unto them", "And the LORD spake unto Moses, saying,", "Hear, O Israel",
        ];
        using var off = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = 1 });
        using var on = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = 16 });
        var options = new GenerationOptions { MaxNewTokens = newTokens, StopTokenIds = [] };
        using var genai = GenAIGreedy.Model(folder);
        IReadOnlyList<int> RunGenAI(int[] prompt)
        {
            using var greedy = new GenAIGreedy(genai, prompt, newTokens);
            return greedy.Run();
        }

        var prompts = Enumerable.Range(0, 16).Select(i => off.Tokenizer.Encode(texts[i % texts.Length] + (i >= texts.Length ? " and" : ""))).ToArray();
        Console.WriteLine($"model: {on.Info}");
        Console.WriteLine($"{newTokens} new tokens per request, greedy, CPU, {Environment.ProcessorCount} cores, batching {(on.Runtime.Scheduler is null ? "UNSUPPORTED by this graph" : "on")}");
        Console.WriteLine();

        (string Name, Func<int[][], Task<IReadOnlyList<int>[]>> Run)[] modes =
        [
            ("one at a time", async ps =>
            {
                var ids = new IReadOnlyList<int>[ps.Length];
                for (var i = 0; i < ps.Length; i++) ids[i] = (await off.GenerateAsync(ps[i], options)).TokenIds;
                return ids;
            }),
            ("unbatched concurrent", async ps => (await Task.WhenAll(ps.Select(p => off.GenerateAsync(p, options)))).Select(r => r.TokenIds).ToArray()),
            ("batched", async ps => (await Task.WhenAll(ps.Select(p => on.GenerateAsync(p, options)))).Select(r => r.TokenIds).ToArray()),
            ("GenAI concurrent", async ps => await Task.WhenAll(ps.Select(p => Task.Run(() => RunGenAI(p))))),
        ];

        foreach (var mode in modes) await mode.Run(prompts[..2]); // warm-up
        int[] counts = [1, 4, 8, 16];
        var rates = new Dictionary<(int, int), List<double>>();
        var mismatches = 0;
        var rounds = 3;
        for (var round = 0; round < rounds; round++)
        {
            foreach (var count in counts)
            {
                IReadOnlyList<int>[]? reference = null;
                for (var m = 0; m < modes.Length; m++)
                {
                    var clock = Stopwatch.StartNew();
                    var ids = await modes[m].Run(prompts[..count]);
                    var seconds = clock.Elapsed.TotalSeconds;
                    var tokens = ids.Sum(t => t.Count);
                    if (!rates.TryGetValue((count, m), out var list)) rates[(count, m)] = list = [];
                    list.Add(tokens / seconds);
                    reference ??= ids;
                    for (var i = 0; i < count; i++)
                    {
                        if (!ids[i].SequenceEqual(reference[i])) mismatches++;
                    }
                }
            }
        }

        double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
        Console.WriteLine($"| concurrent requests | one at a time (tok/s) | unbatched concurrent (tok/s) | batched (tok/s) | GenAI concurrent (tok/s) | batched ÷ one at a time | batched ÷ unbatched concurrent | batched ÷ GenAI concurrent |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var count in counts)
        {
            var one = Median(rates[(count, 0)]);
            var concurrent = Median(rates[(count, 1)]);
            var batched = Median(rates[(count, 2)]);
            var theirs = Median(rates[(count, 3)]);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {count} | {one:F0} | {concurrent:F0} | {batched:F0} | {theirs:F0} | {batched / one:F2}× | {batched / concurrent:F2}× | {batched / theirs:F2}× |"));
        }

        Console.WriteLine();
        Console.WriteLine($"medians of {rounds} rounds; every mode's tokens identical to one at a time: {(mismatches == 0 ? "yes" : $"NO ({mismatches} sequences differ)")}");
        return mismatches == 0 ? 0 : 1;
    }

    /// <summary>
    /// choice-scoring [folder]: multiple-choice scoring (contexts with 4 continuations each, as lm-eval's tasks), with the
    /// continuations of a context as rows of one batched pass (batching on) vs one forked session each (batching off).
    /// </summary>
    public static async Task<int> ChoiceScoringAsync(string folder)
    {
        using var off = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = 1 });
        using var on = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = 16 });
        var revelation = File.ReadAllText(Path.Combine(Benchmarks.RepoRoot(), "tests", "data", "kjv", "revelation.txt"));
        var sentences = revelation.Split([". ", ": ", "; "], StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim().Split(' ')).Where(w => w.Length >= 8).Take(64).ToArray();
        // Each context is a sentence's first half; its choices are the true second half and three other sentences' halves.
        var requests = sentences.Take(16).SelectMany((w, q) => Enumerable.Range(0, 4).Select(c =>
        {
            var other = sentences[(q + 16 * c) % sentences.Length];
            return new ScoreRequest(string.Join(' ', w[..(w.Length / 2)]), " " + string.Join(' ', other[(other.Length / 2)..]));
        })).ToArray();
        await off.ScoreBatchAsync(requests[..8]);
        await on.ScoreBatchAsync(requests[..8]);
        var forks = new List<double>();
        var batched = new List<double>();
        IReadOnlyList<ScoreResult>? a = null, b = null;
        for (var round = 0; round < 3; round++)
        {
            var clock = Stopwatch.StartNew();
            a = await off.ScoreBatchAsync(requests);
            forks.Add(clock.Elapsed.TotalSeconds);
            clock.Restart();
            b = await on.ScoreBatchAsync(requests);
            batched.Add(clock.Elapsed.TotalSeconds);
        }

        var worst = Enumerable.Range(0, requests.Length).Max(i => Math.Abs(a![i].LogProb - b![i].LogProb));
        double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{requests.Length} pairs (16 contexts x 4 continuations), CPU, {Environment.ProcessorCount} cores, median of 3: forks {Median(forks) * 1000:F0} ms, batched {Median(batched) * 1000:F0} ms, {Median(forks) / Median(batched):F2}x; largest log-prob difference {worst:E1}"));
        return worst <= 1e-3 ? 0 : 1;
    }
}
