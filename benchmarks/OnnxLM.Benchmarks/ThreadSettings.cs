using System.Diagnostics;
using System.Globalization;
using OnnxLM;

/// <summary>
/// thread-settings [folder]: decode speed of one model under ONNX Runtime's intra-op thread counts (its default, 1, 2)
/// with spinning on and off (<c>session.intra_op.allow_spinning</c>), for one request at a time and for 4 concurrent
/// requests, with ONNX Runtime's pool thread pinned or not, settings measured in turn over several rounds (median), so the machine's load hits them alike.
/// </summary>
internal static class ThreadSettings
{
    public static async Task<int> RunAsync(string folder)
    {
        // Pinned: ONNX Runtime's one pool thread (the decode thread is the other) kept on the second logical processor
        // (session.intra_op_thread_affinities, 1-based; the decode thread itself is left to the OS scheduler).
        (string Name, int Threads, bool Spin, string? Affinity)[] settings =
        [
            ("ORT default threads, spinning", 0, true, null),
            ("ORT default threads, no spinning", 0, false, null),
            ("1 thread", 1, true, null),
            ("2 threads, spinning", 2, true, null),
            ("2 threads, no spinning", 2, false, null),
            ("2 threads, spinning, pool thread pinned", 2, true, "2"),
            ("2 threads, no spinning, pool thread pinned", 2, false, "2"),
        ];
        var models = settings.Select(s => LanguageModel.Load(folder, new LanguageModelOptions
        {
            ExecutionProvider = ExecutionProvider.Cpu,
            IntraOpThreadCount = s.Threads,
            ConfigureSessionOptions = o =>
            {
                if (!s.Spin) o.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
                if (s.Affinity is { } affinity) o.AddSessionConfigEntry("session.intra_op_thread_affinities", affinity);
            },
        })).ToArray();
        try
        {
            var prompt = models[0].Tokenizer.Encode("And the LORD said unto Moses,");
            var options = new GenerationOptions { MaxNewTokens = 100, StopTokenIds = [] };
            foreach (var model in models) await model.GenerateAsync(prompt, options); // warm-up
            var single = settings.Select(_ => new List<double>()).ToArray();
            var concurrent = settings.Select(_ => new List<double>()).ToArray();
            for (var round = 0; round < 5; round++)
            {
                for (var i = 0; i < models.Length; i++)
                {
                    var clock = Stopwatch.StartNew();
                    await models[i].GenerateAsync(prompt, options);
                    single[i].Add(100 / clock.Elapsed.TotalSeconds);
                    clock.Restart();
                    var model = models[i];
                    await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => model.GenerateAsync(prompt, options))));
                    concurrent[i].Add(400 / clock.Elapsed.TotalSeconds);
                }
            }

            Console.WriteLine($"{Path.GetFileName(folder.TrimEnd('/'))}: 100 greedy tokens after an 8-token prompt (prefill included), CPU, {Environment.ProcessorCount} cores; median of 5 rounds");
            Console.WriteLine();
            Console.WriteLine("| setting | 1 request: tokens/s | × ORT default | 4 concurrent: total tokens/s | × ORT default |");
            Console.WriteLine("|---|---:|---:|---:|---:|");
            for (var i = 0; i < settings.Length; i++)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {settings[i].Name} | {Benchmarks.Median(single[i]):F0} | {Benchmarks.Median(single[i]) / Benchmarks.Median(single[0]):F2} | {Benchmarks.Median(concurrent[i]):F0} | {Benchmarks.Median(concurrent[i]) / Benchmarks.Median(concurrent[0]):F2} |"));
            }
        }
        finally
        {
            foreach (var model in models) model.Dispose();
        }

        return 0;
    }
}
