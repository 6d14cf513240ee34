using System.Diagnostics;
using OnnxLM;
using OnnxLM.Sampling;

/// <summary>Side-by-side measurements: each ratio comes from numbers taken in the same run.</summary>
internal static class Benchmarks
{
    public static int SamplingCost(string folder)
    {
        using var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        var decodeMs = DecodeStepMilliseconds(model);
        Console.WriteLine($"model: {model.Info}");
        Console.WriteLine($"decode step of the model: {decodeMs:F3} ms/token");

        // 32k (Llama 2, Mistral) and 151,936 (Qwen2); flat random logits (a nucleus of most of the vocabulary) and peaked
        // ones (normal, σ 2.5, a language model's head after training: the nucleus is a few hundred tokens).
        foreach (var vocab in new[] { 32000, 151_936 })
        {
            foreach (var peaked in new[] { false, true })
            {
                var random = new Random(1);
                var logits = new float[vocab];
                for (var i = 0; i < vocab; i++)
                {
                    logits[i] = peaked
                        ? (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()) * 2.5)
                        : (float)(random.NextDouble() * 8 - 4 + (i % 97 == 0 ? 6 : 0));
                }

                var history = Enumerable.Range(0, 256).Select(_ => random.Next(vocab)).ToArray();
                Console.WriteLine();
                Console.WriteLine($"vocabulary {vocab:N0}, {(peaked ? "peaked (normal σ 2.5)" : "flat (uniform ±4, every 97th +6)")} logits:");
                SamplingCost(logits, history, decodeMs);
            }
        }

        return 0;
    }

    private static void SamplingCost(float[] logits, int[] history, double decodeMs)
    {
        (string Name, GenerationOptions Options)[] pipelines =
        [
            ("greedy", new GenerationOptions()),
            ("temperature 0.8 + top-k 40 + top-p 0.95 (HF order)", new GenerationOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f }),
            ("llama.cpp defaults: penalties 1.1, top-k 40, top-p 0.95, min-p 0.05, temperature 0.8",
                new GenerationOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f, MinP = 0.05f, RepetitionPenalty = 1.1f, SamplerOrder = GenerationOptions.LlamaCppSamplerOrder }),
            ("temperature 0.8 + top-p 0.95 (no top-k: top-p over the whole vocabulary)", new GenerationOptions { Temperature = 0.8f, TopP = 0.95f }),
            ("OpenAI-style chain: presence 0.2 + frequency 0.2 + repetition 1.1 + temperature 0.8 + top-p 0.95 + min-p 0.05",
                new GenerationOptions { Temperature = 0.8f, TopP = 0.95f, MinP = 0.05f, RepetitionPenalty = 1.1f, PresencePenalty = 0.2f, FrequencyPenalty = 0.2f }),
            ("temperature 0.8 alone (sampling the full vocabulary)", new GenerationOptions { Temperature = 0.8f }),
            ("DRY 0.8 (+ temperature 0.8)", new GenerationOptions { Temperature = 0.8f, DryMultiplier = 0.8f }),
            ("no-repeat-ngram 3 (+ temperature 0.8)", new GenerationOptions { Temperature = 0.8f, NoRepeatNGramSize = 3 }),
            ("typical 0.9 (+ temperature 0.8)", new GenerationOptions { Temperature = 0.8f, TypicalP = 0.9f }),
            ("mirostat v2 (+ temperature 0.8)", new GenerationOptions { Temperature = 0.8f, Mirostat = 2 }),
            ("everything: penalties, no-repeat 3, DRY, top-nσ, typical, eta, XTC",
                new GenerationOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f, MinP = 0.05f, RepetitionPenalty = 1.1f, PresencePenalty = 0.2f,
                    FrequencyPenalty = 0.2f, NoRepeatNGramSize = 3, DryMultiplier = 0.8f, TopNSigma = 2f, TypicalP = 0.9f, EtaCutoff = 0.001f, XtcProbability = 0.5f }),
        ];

        var vocab = logits.Length;
        var scratch = new float[vocab];
        foreach (var (name, options) in pipelines)
        {
            var pipeline = SamplingPipeline.Create(options, [1], null);
            var context = new SamplingContext(new Random(2), 200);
            context.SetTokens(history, history.Length);
            // Warm up for half a second so the JIT's optimized tier runs, then time at least 100 picks and one second.
            var clock = Stopwatch.StartNew();
            while (clock.ElapsedMilliseconds < 500) { logits.CopyTo(scratch, 0); pipeline.Choose(scratch, context); }
            var n = 0;
            clock.Restart();
            while (n < 100 || clock.ElapsedMilliseconds < 1000)
            {
                logits.CopyTo(scratch, 0);
                pipeline.Choose(scratch, context);
                n++;
            }

            var ms = clock.Elapsed.TotalMilliseconds / n;
            Console.WriteLine($"  {name}: {ms * 1000:F1} µs/token = {100 * ms / decodeMs:F1}% of a decode step");
        }
    }

    public static async Task<int> ScoreThroughputAsync(string folder)
    {
        using var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        Console.WriteLine($"model: {model.Info}");
        var vocab = model.Info.VocabularySize;

        // 1. One long pair: ScoreAsync vs the forward pass alone over the same positions (all logits rows copied out).
        var text = string.Concat(Enumerable.Repeat("And God said, Let there be light: and there was light. ", 200));
        var tokens = model.Tokenizer.Encode(text, addSpecialTokens: false);
        tokens = tokens[..Math.Min(tokens.Length, Math.Min(model.Info.ContextLength, 512))];
        var context = tokens[..(tokens.Length / 4)];
        var continuation = tokens[(tokens.Length / 4)..];
        var raw = new float[(tokens.Length - 1) * vocab];
        var scoreSeconds = await TimeAsync(() => model.ScoreAsync(context, continuation));
        var forwardSeconds = await TimeAsync(() =>
        {
            using var s = model.CreateSession(tokens.Length);
            s.AppendWithAllLogits(tokens[..^1], raw, CancellationToken.None);
            return Task.CompletedTask;
        });
        Console.WriteLine($"one pair, {continuation.Length} continuation tokens after {context.Length} ({tokens.Length} positions):");
        Console.WriteLine($"  ScoreAsync          {tokens.Length / scoreSeconds,8:F0} tokens/s ({scoreSeconds * 1000:F2} ms)");
        Console.WriteLine($"  forward pass alone  {tokens.Length / forwardSeconds,8:F0} tokens/s ({forwardSeconds * 1000:F2} ms)");
        Console.WriteLine($"  ratio {forwardSeconds / scoreSeconds:F2}x");

        // 2. lm-eval's typical load: many short pairs with distinct contexts (sentences of Revelation split in half).
        var revelation = File.ReadAllText(Path.Combine(RepoRoot(), "tests", "data", "kjv", "revelation.txt"));
        var requests = revelation.Split([". ", ": ", "; "], StringSplitOptions.RemoveEmptyEntries)
            .Select(s => s.Trim().Split(' ')).Where(w => w.Length >= 8).Take(64)
            .Select(w => new ScoreRequest(string.Join(' ', w[..(w.Length / 2)]), " " + string.Join(' ', w[(w.Length / 2)..]))).ToArray();
        var pairs = requests.Select(r => Scorer.Tokenize(model.Runtime, r.Context, r.Continuation, new ScoreOptions())).ToArray();
        var sequences = pairs.Select(p => p.Context.Concat(p.Continuation[..^1]).ToArray()).ToArray();
        var positions = sequences.Sum(s => s.Length);
        var batchSeconds = await TimeAsync(() => model.ScoreBatchAsync(requests));
        var oneByOneSeconds = await TimeAsync(async () =>
        {
            foreach (var r in requests) await model.ScoreAsync(r.Context, r.Continuation);
        });
        // The baselines copy out only the rows a scorer reads (from the context's last position on), into buffers made once.
        var rows = pairs.Select(p => new float[p.Continuation.Length * vocab]).ToArray();
        var sequentialForward = await TimeAsync(() =>
        {
            for (var i = 0; i < sequences.Length; i++)
            {
                using var s = model.CreateSession(sequences[i].Length);
                s.AppendWithAllLogits(sequences[i], rows[i], pairs[i].Context.Length - 1, CancellationToken.None);
            }

            return Task.CompletedTask;
        });
        var order = Enumerable.Range(0, sequences.Length).OrderBy(i => sequences[i].Length).ToArray();
        var paddedForward = await TimeAsync(() =>
        {
            foreach (var chunk in order.Chunk(PaddedBatch.MaxSequences))
            {
                PaddedBatch.Run(model.Runtime, chunk.Select(i => sequences[i]).ToArray(), chunk.Select(i => pairs[i].Context.Length - 1).ToArray(),
                    chunk.Select(i => rows[i]).ToArray(), CancellationToken.None);
            }

            return Task.CompletedTask;
        });
        var bestForward = Math.Min(sequentialForward, paddedForward);
        Console.WriteLine($"{requests.Length} pairs with distinct contexts, {positions} positions (graph takes padded batches: {PaddedBatch.IsSupported(model.Runtime.Graph)}):");
        Console.WriteLine($"  ScoreBatchAsync                          {positions / batchSeconds,8:F0} tokens/s ({batchSeconds * 1000:F1} ms)");
        Console.WriteLine($"  ScoreAsync one pair at a time            {positions / oneByOneSeconds,8:F0} tokens/s ({oneByOneSeconds * 1000:F1} ms)");
        Console.WriteLine($"  forward passes alone, one per sequence   {positions / sequentialForward,8:F0} tokens/s ({sequentialForward * 1000:F1} ms)");
        Console.WriteLine($"  forward passes alone, padded batches     {positions / paddedForward,8:F0} tokens/s ({paddedForward * 1000:F1} ms)");
        Console.WriteLine($"  ratio ScoreBatchAsync / fastest forward  {bestForward / batchSeconds:F2}x");

        // 3. Rolling perplexity of the held-out book.
        var chapters = revelation.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var rollingSeconds = await TimeAsync(async () =>
        {
            foreach (var chapter in chapters) await model.ScorePerplexityAsync(chapter);
        }, minimumRuns: 1);
        var rollingTokens = chapters.Sum(c => model.Tokenizer.Encode(c, addSpecialTokens: false).Length);
        Console.WriteLine($"ScorePerplexityAsync over tests/data/kjv/revelation.txt: {rollingTokens / rollingSeconds:F0} tokens/s");
        return 0;
    }

    /// <summary>Runs <paramref name="action"/> for a second to warm the JIT up, then returns its median time over at least a second.</summary>
    private static async Task<double> TimeAsync(Func<Task> action, int minimumRuns = 5)
    {
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 1000) await action();
        var times = new List<double>();
        clock.Restart();
        while (times.Count < minimumRuns || clock.ElapsedMilliseconds < 1000)
        {
            var run = Stopwatch.StartNew();
            await action();
            times.Add(run.Elapsed.TotalSeconds);
        }

        return times.Order().ElementAt(times.Count / 2);
    }

    /// <summary>The folder holding OnnxLM.sln (or the current folder).</summary>
    /// <summary>The upper of the two middle values (the middle one for an odd count): the benchmarks' median of rounds.</summary>
    public static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    /// <summary>The index of the largest logit, the lowest one on a tie (a greedy choice).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var v = 1; v < logits.Length; v++) if (logits[v] > logits[best]) best = v;
        return best;
    }

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OnnxLM.sln"))) return dir.FullName;
        }

        return Environment.CurrentDirectory;
    }

    /// <summary>Mean time of one cached decoding step (session.Append of one token) over sequences of up to 200 steps, after a second of warm-up.</summary>
    public static double DecodeStepMilliseconds(LanguageModel model)
    {
        var n = Math.Min(200, model.Info.ContextLength - 1);
        using var session = model.CreateSession(n + 1);
        void Sequence()
        {
            session.Clear();
            session.Append([model.Info.BosTokenId ?? 0]);
            for (var i = 0; i < n; i++) session.Append(1 + i % 50);
        }

        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 1000) Sequence();
        var steps = 0;
        clock.Restart();
        while (steps < 3 * n || clock.ElapsedMilliseconds < 1000)
        {
            Sequence();
            steps += n;
        }

        return clock.Elapsed.TotalMilliseconds / steps;
    }
}
