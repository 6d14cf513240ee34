using System.Diagnostics;
using System.Globalization;
using OnnxLM;

/// <summary>
/// speculative-scale &lt;folder&gt; [--rounds N] [--threads N]: prompt-lookup speculation on a model of real size without a
/// tokenizer (the random-weight checkpoints). Two measurements:
/// <list type="bullet">
/// <item>the cost of verifying a draft: one run of k new tokens after a 128-token prompt, k = 1 … 11, against k = 1 (a
/// speculative step is one such run; speculation pays when the accepted tokens outnumber the extra cost);</item>
/// <item>greedy generation with and without prompt lookup, alternating, on a prompt whose continuation repeats text it
/// holds, and on one whose continuation does not. The first is built as the KJV benchmark builds its extractive prompts
/// (a passage, then its first words again), with the random model's own greedy text as the passage: its next token
/// depends mostly on the last few, so after the repeated start it says the passage again, as a trained model quoting its
/// input does. Where the tokens part from plain decoding, the first such token is shown.</item>
/// </list>
/// </summary>
internal static class SpeculativeScale
{
    private const int NewTokens = 100;

    public static async Task<int> RunAsync(string[] args)
    {
        var folder = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal) && Directory.Exists(a))
            ?? throw new ArgumentException("usage: speculative-scale <folder> [--rounds 3] [--threads 2]");
        string Option(string name, string fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;
        var rounds = int.Parse(Option("--rounds", "3"), CultureInfo.InvariantCulture);
        var threads = int.Parse(Option("--threads", "2"), CultureInfo.InvariantCulture);
        using var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, IntraOpThreadCount = threads, MaxBatchSize = 1 });
        var vocab = model.Info.VocabularySize;
        var random = new Random(11);
        var prompt = Enumerable.Range(0, 128).Select(_ => random.Next(vocab)).ToArray();
        Console.WriteLine($"{Path.GetFileName(folder.TrimEnd('/'))}: {threads} threads, {rounds} rounds, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine();

        // The cost of one run of k tokens after the prompt (a fresh session each time, its prefill untimed).
        Console.WriteLine("| new tokens in one run | ms (min / median) | × one token (median) |");
        Console.WriteLine("|---:|---|---:|");
        double single = 0;
        foreach (var k in new[] { 1, 2, 3, 4, 6, 8, 11 })
        {
            var times = new List<double>();
            for (var r = 0; r < rounds + 1; r++)
            {
                using var session = model.CreateSession(prompt.Length + k);
                session.Append(prompt);
                var clock = Stopwatch.StartNew();
                session.Append(prompt.AsSpan(0, k));
                if (r > 0) times.Add(clock.Elapsed.TotalMilliseconds);
            }

            var median = Benchmarks.Median(times);
            if (k == 1) single = median;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {k} | {times.Min():F1} / {median:F1} | {median / single:F2} |"));
        }

        // An extractive prompt as the KJV benchmark builds them: a passage, then its first 8 tokens again. The passage is
        // 32 random tokens and the model's own greedy continuation of them, so that what it says next after the repeated
        // start is likely the passage again (a random model's next token depends mostly on the last few).
        var seed = prompt[..32];
        var passage = seed.Concat((await model.GenerateAsync(seed, new GenerationOptions { MaxNewTokens = 120, StopTokenIds = [] })).TokenIds).ToArray();
        (string Name, int[] Ids)[] cases =
        [
            ("a passage of 152 tokens, then its first 8 again", [.. passage, .. passage[..8]]),
            ("128 random tokens (nothing to look up)", prompt),
        ];
        Console.WriteLine();
        Console.WriteLine($"Greedy, {NewTokens} new tokens (prefill included), plain and prompt lookup (draft ≤ 10, n-gram 3..1) alternating:");
        Console.WriteLine();
        Console.WriteLine("| prompt | tokens | plain tok/s (median) | speculative tok/s (median) | × min / median / max | drafts accepted | tokens per run | copies the passage for | identical |");
        Console.WriteLine("|---|---:|---:|---:|---|---:|---:|---:|---|");
        var allIdentical = true;
        foreach (var (name, ids) in cases)
        {
            var plainOptions = new GenerationOptions { MaxNewTokens = NewTokens, StopTokenIds = [] };
            var speculation = new SpeculativeDecoding { DraftLength = 10, MinNGramSize = 1, MaxNGramSize = 3 };
            var fastOptions = new GenerationOptions { MaxNewTokens = NewTokens, StopTokenIds = [], Speculation = speculation };
            var reference = await model.GenerateAsync(ids, plainOptions);
            var plain = new List<double>();
            var fast = new List<double>();
            var ratios = new List<double>();
            var identical = true;
            var divergence = NewTokens;
            for (var r = 0; r < rounds; r++)
            {
                var clock = Stopwatch.StartNew();
                var a = await model.GenerateAsync(ids, plainOptions);
                plain.Add(a.TokenIds.Count / clock.Elapsed.TotalSeconds);
                clock.Restart();
                var b = await model.GenerateAsync(ids, fastOptions);
                fast.Add(b.TokenIds.Count / clock.Elapsed.TotalSeconds);
                ratios.Add(fast[^1] / plain[^1]);
                identical &= a.TokenIds.SequenceEqual(reference.TokenIds) && b.TokenIds.SequenceEqual(reference.TokenIds);
                divergence = Math.Min(divergence, b.TokenIds.Zip(reference.TokenIds).TakeWhile(p => p.First == p.Second).Count());
            }

            allIdentical &= identical;
            var (drafted, accepted, _) = speculation.Counts;
            var steps = rounds * (long)(NewTokens - 1);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {ids.Length} | {Benchmarks.Median(plain):F1} | {Benchmarks.Median(fast):F1} | {ratios.Min():F2} / {Benchmarks.Median(ratios):F2} / {ratios.Max():F2} | " +
                $"{accepted}/{drafted} ({(drafted == 0 ? 0 : 100.0 * accepted / drafted):F0}%) | {(double)steps / (steps - accepted):F2} | {Copied(ids, passage, reference.TokenIds)} tokens | {(identical ? "yes" : $"from token {divergence}")} |"));
        }

        if (!allIdentical)
        {
            Console.WriteLine();
            Console.WriteLine("Tokens part where a draft was verified: on int4 graphs with int8 activations (MatMulNBits accuracy_level 4) ONNX Runtime");
            Console.WriteLine("rounds a several-token run differently from a one-token run, and a random model's top logits are close.");
        }

        return 0;
    }

    /// <summary>How many tokens of the continuation repeat the passage after its repeated start (0 for other prompts).</summary>
    private static int Copied(int[] prompt, int[] passage, IReadOnlyList<int> continuation)
    {
        if (prompt.Length != passage.Length + 8) return 0;
        var n = 0;
        while (n < continuation.Count && 8 + n < passage.Length && continuation[n] == passage[8 + n]) n++;
        return n;
    }

}
