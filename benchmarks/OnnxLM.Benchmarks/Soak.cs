using System.Diagnostics;
using System.Globalization;
using OnnxLM;

/// <summary>
/// soak [generations]: one model under a long run, outside the unit tests. (1) N short generations (default 10,000),
/// alternating greedy and sampled, text and ids, with resident memory (RSS, native + managed) and the managed heap
/// sampled every 5 %: after warm-up both must stay within 5 % of their post-warm-up level. (2) 64 concurrent
/// requests whose greedy tokens must equal the same requests run one at a time. (3) Cancellation latency: the time
/// from Cancel() to the generation's task finishing, over 200 cancellations at random points (p50/p99/max).
/// (4) Disposing the model while 8 generations run, 40 times: each ends with ObjectDisposedException or finishes, none
/// crashes, and memory stays bounded.
/// </summary>
internal static class Soak
{
    public static async Task<int> RunAsync(int generations)
    {
        var folder = Path.Combine(Benchmarks.RepoRoot(), "models", "kjv-tiny");
        var failures = 0;
        Console.WriteLine($"soak on kjv-tiny, CPU, {Environment.ProcessorCount} cores, {generations:N0} generations");
        Console.WriteLine();

        using (var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu }))
        {
            failures += await LongRunAsync(model, generations);
            failures += await ConcurrentAsync(model, 64);
            failures += await CancellationAsync(model, 200);
        }

        failures += DisposeInChildProcess();
        Console.WriteLine(failures == 0 ? "soak: all checks passed" : $"soak: {failures} check(s) FAILED");
        return failures == 0 ? 0 : 1;
    }

    private static (double RssMb, double HeapMb) Memory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        return (process.WorkingSet64 / 1048576.0, GC.GetTotalMemory(forceFullCollection: false) / 1048576.0);
    }

    private static async Task<int> LongRunAsync(LanguageModel model, int generations)
    {
        string[] prompts = ["In the beginning", "And God said", "The LORD is my shepherd", "Blessed are the", "And it came to pass"];
        var samples = new List<(int Done, double Rss, double Heap)>();
        var clock = Stopwatch.StartNew();
        var every = Math.Max(1, generations / 20);
        for (var i = 0; i < generations; i++)
        {
            var options = new GenerationOptions { MaxNewTokens = 8, Temperature = i % 2 == 0 ? 0 : 0.9f, Seed = i };
            if (i % 3 == 0) await model.GenerateAsync(model.Tokenizer.Encode(prompts[i % prompts.Length]), options);
            else await model.GenerateAsync(prompts[i % prompts.Length], options);
            if ((i + 1) % every == 0)
            {
                var (rss, heap) = Memory();
                samples.Add((i + 1, rss, heap));
            }
        }

        Console.WriteLine("| generations | RSS (MB) | managed heap (MB) |");
        Console.WriteLine("|---:|---:|---:|");
        foreach (var (done, rss, heap) in samples) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {done:N0} | {rss:F1} | {heap:F2} |"));
        // Warm-up: the first quarter (caches, JIT, ONNX Runtime's arenas settle). RSS must then stay within 5 %; the
        // managed heap is about a megabyte that breathes with the caches, so it is judged by drift: the mean of the last
        // quarter against the mean of the second.
        var steady = samples.Skip(samples.Count / 4).ToList();
        var rssSpread = (steady.Max(s => s.Rss) - steady.Min(s => s.Rss)) / steady.Min(s => s.Rss);
        var quarter = Math.Max(1, samples.Count / 4);
        var early = samples.Skip(quarter).Take(quarter).Average(s => s.Heap);
        var late = samples.TakeLast(quarter).Average(s => s.Heap);
        var heapDrift = (late - early) / early;
        var ok = rssSpread <= 0.05 && heapDrift <= 0.05;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"\nlong run: {generations:N0} generations in {clock.Elapsed.TotalSeconds:F0} s; after warm-up RSS varies {rssSpread:P1} (limit 5 %), managed heap {steady.Min(s => s.Heap):F2}–{steady.Max(s => s.Heap):F2} MB, drift {heapDrift:+0.0%;-0.0%} (limit +5 %): {(ok ? "steady" : "GROWING")}\n"));
        return ok ? 0 : 1;
    }

    private static async Task<int> ConcurrentAsync(LanguageModel model, int count)
    {
        var prompts = Enumerable.Range(0, count).Select(i => $"And the {i} sons of").ToArray();
        var options = new GenerationOptions { MaxNewTokens = 12, Temperature = 0 };
        var alone = new List<IReadOnlyList<int>>();
        var clock = Stopwatch.StartNew();
        foreach (var p in prompts) alone.Add((await model.GenerateAsync(p, options)).TokenIds);
        var sequential = clock.Elapsed;
        clock.Restart();
        var together = await Task.WhenAll(prompts.Select(p => Task.Run(() => model.GenerateAsync(p, options))));
        var concurrent = clock.Elapsed;
        var wrong = Enumerable.Range(0, count).Count(i => !together[i].TokenIds.SequenceEqual(alone[i]));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{count} concurrent requests: {count - wrong}/{count} identical to running alone; {concurrent.TotalSeconds:F2} s together vs {sequential.TotalSeconds:F2} s one by one\n"));
        return wrong == 0 ? 0 : 1;
    }

    private static async Task<int> CancellationAsync(LanguageModel model, int count)
    {
        var latencies = new List<double>();
        var random = new Random(1);
        var notCancelled = 0;
        for (var i = 0; i < count; i++)
        {
            using var cts = new CancellationTokenSource();
            var run = Task.Run(() => model.GenerateAsync("In the beginning", new GenerationOptions { MaxNewTokens = 200, StopTokenIds = [] }, cts.Token));
            await Task.Delay(random.Next(1, 40));
            var clock = Stopwatch.StartNew();
            cts.Cancel();
            try
            {
                await run;
                notCancelled++; // finished before the cancel arrived
            }
            catch (OperationCanceledException)
            {
                latencies.Add(clock.Elapsed.TotalMilliseconds);
            }
        }

        latencies.Sort();
        double At(double q) => latencies[Math.Min(latencies.Count - 1, (int)(q * latencies.Count))];
        var step = Benchmarks.DecodeStepMilliseconds(model); // for scale, in the same run
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"cancellation: {latencies.Count} cancelled mid-run ({notCancelled} had finished); cancel → return p50 {At(0.5):F2} ms, p99 {At(0.99):F2} ms, max {latencies[^1]:F2} ms; one decode step {step:F2} ms\n"));
        return latencies.Count > 0 ? 0 : 1;
    }

    /// <summary>
    /// Runs <see cref="DisposeDuringGenerationAsync"/> in a fresh process with glibc limited to two malloc arenas, so
    /// what it measures is OnnxLM's and ONNX Runtime's memory, not how the C allocator spreads freed pages over one
    /// arena per thread (with the default, the same rounds plateau at 400–580 MB instead of about 270).
    /// </summary>
    private static int DisposeInChildProcess()
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!, ["soak-dispose"]) { UseShellExecute = false };
        start.Environment["MALLOC_ARENA_MAX"] = "2";
        using var child = Process.Start(start)!;
        child.WaitForExit();
        return child.ExitCode == 0 ? 0 : 1;
    }

    /// <summary>The dispose check on its own (the soak runs it in a child process).</summary>
    public static Task<int> DisposeOnlyAsync() => DisposeDuringGenerationAsync(Path.Combine(Benchmarks.RepoRoot(), "models", "kjv-tiny"));

    /// <summary>
    /// 40 rounds of load, 8 generations, dispose mid-run. RSS climbs to the C allocator's high-water mark (glibc keeps
    /// freed pages in per-thread arenas: with MALLOC_ARENA_MAX=2 the plateau is far lower) and must then stay there.
    /// </summary>
    private static async Task<int> DisposeDuringGenerationAsync(string folder)
    {
        var before = Memory();
        var outcomes = new List<string>();
        const int rounds = 40;
        var rss = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            rss.Add(Memory().RssMb);
            var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
            var runs = Enumerable.Range(0, 8).Select(i => Task.Run(() => model.GenerateAsync($"And {i}", new GenerationOptions { MaxNewTokens = 200, StopTokenIds = [] }))).ToArray();
            await Task.Delay(20 + round);
            model.Dispose();
            foreach (var run in runs)
            {
                try
                {
                    await run;
                    outcomes.Add("finished");
                }
                catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException)
                {
                    outcomes.Add(e.GetType().Name);
                }
            }
        }

        var after = Memory();
        var summary = string.Join(", ", outcomes.GroupBy(o => o).Select(g => $"{g.Key} {g.Count()}"));
        // A leak grows with every round; the allocator's high-water mark does not: the second half must not exceed the first half's peak by more than 5 %.
        var half = rss.Count / 2;
        var bounded = rss.Skip(half).Max() <= rss.Take(half).Max() * 1.05;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"dispose during generation: {rounds} models × 8 runs: {summary}; RSS {before.RssMb:F0} → {after.RssMb:F0} MB, per round {string.Join(" ", rss.Select(m => m.ToString("F0", CultureInfo.InvariantCulture)))}: {(bounded ? "bounded" : "GROWING")}\n"));
        return bounded ? 0 : 1;
    }
}
