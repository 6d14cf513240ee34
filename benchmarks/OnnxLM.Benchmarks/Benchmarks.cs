using System.Diagnostics;
using OnnxLM;

/// <summary>Side-by-side measurements: each ratio comes from numbers taken in the same run.</summary>
internal static class Benchmarks
{
    public static async Task<int> SamplingCostAsync(string folder)
    {
        using var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        var decodeMs = DecodeStepMilliseconds(model);
        Console.WriteLine($"model: {model.Info}");
        Console.WriteLine($"decode step of the model: {decodeMs:F3} ms/token");

        const int vocab = 32000;
        var random = new Random(1);
        var logits = new float[vocab];
        for (var i = 0; i < vocab; i++) logits[i] = (float)(random.NextDouble() * 8 - 4 + (i % 97 == 0 ? 6 : 0));
        var history = Enumerable.Range(0, 256).Select(_ => random.Next(vocab)).ToArray();

        (string Name, GenerationOptions Options)[] pipelines =
        [
            ("greedy", new GenerationOptions()),
            ("temperature 0.8 + top-k 40 + top-p 0.95 (HF order)", new GenerationOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f }),
            ("llama.cpp defaults: penalties 1.1, top-k 40, top-p 0.95, min-p 0.05, temperature 0.8",
                new GenerationOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f, MinP = 0.05f, RepetitionPenalty = 1.1f, SamplerOrder = SamplerOrders.LlamaCpp }),
            ("everything: penalties, no-repeat 3, DRY, top-nσ, typical, eta, XTC",
                new GenerationOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f, MinP = 0.05f, RepetitionPenalty = 1.1f, PresencePenalty = 0.2f,
                    FrequencyPenalty = 0.2f, NoRepeatNGramSize = 3, DryMultiplier = 0.8f, TopNSigma = 2f, TypicalP = 0.9f, EtaCutoff = 0.001f, XtcProbability = 0.5f }),
        ];

        var scratch = new float[vocab];
        foreach (var (name, options) in pipelines)
        {
            var pipeline = SamplingPipeline.Create(options, [1], null);
            var context = new SamplingContext(new Random(2), 200);
            context.SetTokens(history, history.Length);
            for (var i = 0; i < 20; i++) { logits.CopyTo(scratch, 0); pipeline.Choose(scratch, context); }
            const int n = 300;
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < n; i++)
            {
                logits.CopyTo(scratch, 0);
                pipeline.Choose(scratch, context);
            }

            var ms = clock.Elapsed.TotalMilliseconds / n;
            Console.WriteLine($"{name}: {ms * 1000:F1} µs/token = {100 * ms / decodeMs:F1}% of a decode step");
        }

        await Task.CompletedTask;
        return 0;
    }

    public static async Task<int> ScoreThroughputAsync(string folder)
    {
        using var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        var text = string.Concat(Enumerable.Repeat("And God said, Let there be light: and there was light. ", 200));
        var tokens = model.Tokenizer.Encode(text, addBos: false);
        var window = Math.Min(model.Info.ContextLength, 512);
        tokens = tokens[..Math.Min(tokens.Length, window)];
        var context = tokens[..(tokens.Length / 4)];
        var continuation = tokens[(tokens.Length / 4)..];
        Console.WriteLine($"model: {model.Info}");
        Console.WriteLine($"scoring {continuation.Length} continuation tokens after {context.Length} context tokens ({tokens.Length} positions)");

        // Warm-up both paths.
        await model.ScoreAsync(context, continuation);
        using (var s = model.CreateSession(tokens.Length)) s.AppendWithAllLogits(tokens[..^1], new float[(tokens.Length - 1) * model.Info.VocabularySize], CancellationToken.None);

        const int runs = 10;
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < runs; i++) await model.ScoreAsync(context, continuation);
        var scoreSeconds = clock.Elapsed.TotalSeconds / runs;

        clock.Restart();
        var raw = new float[(tokens.Length - 1) * model.Info.VocabularySize];
        for (var i = 0; i < runs; i++)
        {
            using var s = model.CreateSession(tokens.Length);
            s.AppendWithAllLogits(tokens[..^1], raw, CancellationToken.None);
        }

        var forwardSeconds = clock.Elapsed.TotalSeconds / runs;
        Console.WriteLine($"ScoreAsync: {tokens.Length / scoreSeconds:F0} tokens/s ({scoreSeconds * 1000:F1} ms)");
        Console.WriteLine($"one full forward pass: {tokens.Length / forwardSeconds:F0} tokens/s ({forwardSeconds * 1000:F1} ms)");
        Console.WriteLine($"ratio: {forwardSeconds / scoreSeconds:F2}x");

        var rollingText = string.Concat(Enumerable.Repeat("And God said, Let there be light: and there was light. ", 400));
        clock.Restart();
        var rolling = await model.ScorePerplexityAsync(rollingText);
        Console.WriteLine($"ScorePerplexityAsync: {rolling.TokenCount} tokens in {rolling.WindowCount} windows, {rolling.TokenCount / clock.Elapsed.TotalSeconds:F0} tokens/s");
        return 0;
    }

    private static double DecodeStepMilliseconds(LanguageModel model)
    {
        using var session = model.CreateSession(300);
        session.Append([model.Info.BosTokenId ?? 0]);
        for (var i = 0; i < 20; i++) session.Append(1 + i % 50);
        session.Clear();
        session.Append([model.Info.BosTokenId ?? 0]);
        var clock = Stopwatch.StartNew();
        const int n = 200;
        for (var i = 0; i < n; i++) session.Append(1 + i % 50);
        return clock.Elapsed.TotalMilliseconds / n;
    }
}
