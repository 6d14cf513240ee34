using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using OnnxLM;
using GenAI = Microsoft.ML.OnnxRuntimeGenAI;

/// <summary>
/// Where a decode step's time goes, OnnxLM against ONNX Runtime GenAI on the same folder: greedy decode after a prompt of
/// each given length, first timed (engines alternating over rounds), then once more per engine with ONNX Runtime's
/// profiler on. From the profiles: each decode run's wall time inside ONNX Runtime, the operators' kernel time by
/// operator type, and the host time between runs (the engine's own work between two steps).
/// </summary>
internal static class StepProfile
{
    public static int Run(string[] args)
    {
        var folder = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal) && Directory.Exists(a))
            ?? throw new ArgumentException("usage: step-profile <folder> [--prompts 128,2048] [--steps 32] [--rounds 3] [--threads 2] [--batch N]");
        string Option(string name, string fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;
        var prompts = Option("--prompts", "128,2048").Split(',').Select(int.Parse).ToArray();
        var steps = int.Parse(Option("--steps", "32"), CultureInfo.InvariantCulture);
        var rounds = int.Parse(Option("--rounds", "3"), CultureInfo.InvariantCulture);
        var threads = int.Parse(Option("--threads", "2"), CultureInfo.InvariantCulture);
        var work = Directory.CreateTempSubdirectory("onnxlm-step-profile").FullName;
        var batch = int.Parse(Option("--batch", "0"), CultureInfo.InvariantCulture);
        if (batch > 1) return Batched(folder, batch, steps, threads, work);

        Console.WriteLine($"{Path.GetFileName(folder)}: {steps} greedy decode steps after each prompt, {threads} threads, {rounds} rounds alternating, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        int vocab;
        using (var model = Load(folder, threads, null))
        using (var genai = GenAIGreedy.Model(folder, threads))
        {
            vocab = model.Info.VocabularySize;
            Console.WriteLine();
            Console.WriteLine("| prompt | OnnxLM ms/step (min / med / max) | GenAI ms/step | OnnxLM ÷ GenAI speed (med) | time to first token s, OnnxLM / GenAI (med) | same tokens |");
            Console.WriteLine("|---:|---|---|---:|---|---|");
            foreach (var length in prompts)
            {
                var prompt = ScaleBenchmark.PromptIds(vocab, length, 7);
                ScaleBenchmark.OnnxGreedy(model, prompt, 2);
                ScaleBenchmark.GenAIGreedyRun(genai, prompt, 2);
                var ours = new List<double>();
                var theirs = new List<double>();
                var ourFirst = new List<double>();
                var theirFirst = new List<double>();
                var same = true;
                for (var r = 0; r < rounds; r++)
                {
                    var (a, fa, ta) = ScaleBenchmark.OnnxGreedy(model, prompt, steps);
                    var (b, fb, tb) = ScaleBenchmark.GenAIGreedyRun(genai, prompt, steps);
                    ours.Add(1000 * ta / (steps - 1));
                    theirs.Add(1000 * tb / (steps - 1));
                    ourFirst.Add(fa);
                    theirFirst.Add(fb);
                    same &= a.SequenceEqual(b);
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {length} | {ours.Min():F1} / {Benchmarks.Median(ours):F1} / {ours.Max():F1} | {theirs.Min():F1} / {Benchmarks.Median(theirs):F1} / {theirs.Max():F1} | {Benchmarks.Median(theirs) / Benchmarks.Median(ours):F2} | {Benchmarks.Median(ourFirst):F2} / {Benchmarks.Median(theirFirst):F2} | {same} |"));
            }
        }

        // Profiled: one model per engine per prompt length, so each profile file holds one prefill and its decode runs.
        foreach (var length in prompts)
        {
            var prompt = ScaleBenchmark.PromptIds(vocab, length, 7);
            var ourPrefix = Path.Combine(work, $"onnxlm-{length}");
            using (var model = Load(folder, threads, ourPrefix))
            {
                ScaleBenchmark.OnnxGreedy(model, prompt, steps);
                model.Runtime.Graph.Session.EndProfiling(); // GenAI's session writes its profile when disposed; the managed API's does not
            }

            var theirPrefix = Path.Combine(work, $"genai-{length}");
            using (var genai = GenAIProfiled(folder, threads, theirPrefix)) ScaleBenchmark.GenAIGreedyRun(genai, prompt, steps);
            Report(length, Summarise(Newest(work, "onnxlm-" + length)), Summarise(Newest(work, "genai-" + length)));
        }

        Console.WriteLine($"profiles: {work}");
        return 0;
    }

    /// <summary>
    /// --batch N: OnnxLM alone, N concurrent greedy requests decoded as one batch against the same requests one at a time,
    /// both profiled: the steady decode runs (the second half of each profile's runs) side by side, per run.
    /// </summary>
    private static int Batched(string folder, int batch, int steps, int threads, string work)
    {
        var options = new GenerationOptions { MaxNewTokens = steps, StopTokenIds = [] };
        int[][] prompts = [.. Enumerable.Range(0, batch).Select(i => ScaleBenchmark.PromptIds(128_000, 16 + 4 * i, 7).Select(t => t % 1000).ToArray())];
        Profile Measure(int maxBatch, string name)
        {
            var prefix = Path.Combine(work, name);
            using var model = LanguageModel.Load(folder, new LanguageModelOptions
            {
                ExecutionProvider = ExecutionProvider.Cpu, IntraOpThreadCount = threads, MaxBatchSize = maxBatch,
                ConfigureSessionOptions = o => { o.ProfileOutputPathPrefix = prefix; o.EnableProfiling = true; },
            });
            var clock = Stopwatch.StartNew();
            if (maxBatch > 1) Task.WhenAll(prompts.Select(p => model.GenerateAsync(p, options))).GetAwaiter().GetResult();
            else foreach (var p in prompts) model.GenerateAsync(p, options).GetAwaiter().GetResult();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: {batch * steps / clock.Elapsed.TotalSeconds:F1} tok/s (profiled)"));
            model.Runtime.Graph.Session.EndProfiling();
            return Summarise(Newest(work, name), steadyHalf: true);
        }

        var one = Measure(1, "one-at-a-time");
        var many = Measure(batch, "batched");
        Console.WriteLine();
        Console.WriteLine($"Steady decode runs: one row (one at a time, {one.Runs} runs) against {batch} rows (batched, {many.Runs} runs), ms per run:");
        Report(0, one, many, "one row", $"{batch} rows");
        return 0;
    }

    private static LanguageModel Load(string folder, int threads, string? profilePrefix) =>
        LanguageModel.Load(folder, new LanguageModelOptions
        {
            ExecutionProvider = ExecutionProvider.Cpu, IntraOpThreadCount = threads, MaxBatchSize = 1,
            ConfigureSessionOptions = profilePrefix is null ? null : o =>
            {
                o.ProfileOutputPathPrefix = profilePrefix; // read when profiling is switched on, so first
                o.EnableProfiling = true;
            },
        });

    private static GenAI.Model GenAIProfiled(string folder, int threads, string prefix)
    {
        using var config = new GenAI.Config(folder);
        config.ClearProviders();
        config.Overlay(JsonSerializer.Serialize(new { model = new { decoder = new { session_options = new { intra_op_num_threads = threads, enable_profiling = prefix } } } }));
        return new GenAI.Model(config);
    }

    private static string Newest(string folder, string prefix) =>
        new DirectoryInfo(folder).GetFiles(prefix + "*.json").OrderByDescending(f => f.LastWriteTimeUtc).First().FullName;

    private sealed record Profile(int Runs, double RunMs, double KernelMs, double GapMs, Dictionary<string, double> ByOp, Dictionary<string, double> ByNode);

    /// <summary>The decode runs of a profile (every model_run after the largest, the prefill): per-run averages.</summary>
    private static Profile Summarise(string path, bool steadyHalf = false)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var runs = new List<(long Ts, long Dur)>();
        var nodes = new List<(long Ts, long Dur, string Op, string Name)>();
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            var cat = e.GetProperty("cat").GetString();
            var name = e.GetProperty("name").GetString() ?? "";
            var ts = e.GetProperty("ts").GetInt64();
            var dur = e.GetProperty("dur").GetInt64();
            if (cat == "Session" && name == "model_run") runs.Add((ts, dur));
            else if (cat == "Node" && name.EndsWith("_kernel_time", StringComparison.Ordinal))
            {
                var op = e.GetProperty("args").TryGetProperty("op_name", out var o) ? o.GetString() ?? "?" : "?";
                nodes.Add((ts, dur, op, name[..^"_kernel_time".Length]));
            }
        }

        runs.Sort();
        // Decode runs: after the last multi-token run (the prefill is the longest run before decode starts).
        var prefillEnd = runs.Take(runs.Count / 2 + 1).Select((r, i) => (r, i)).MaxBy(x => x.r.Dur).i;
        var decode = steadyHalf ? runs.Skip(runs.Count / 2).Where(r => r.Dur < 4 * runs.Skip(runs.Count / 2).Min(x => x.Dur)).ToList() : runs.Skip(prefillEnd + 1).ToList();
        // The first decode run after prefill is skipped too (the generator's first token comes from the prefill on both engines).
        var byOp = new Dictionary<string, double>();
        var byNode = new Dictionary<string, double>();
        double kernel = 0;
        foreach (var (ts, dur, op, name) in nodes)
        {
            if (!decode.Any(r => ts >= r.Ts && ts <= r.Ts + r.Dur)) continue;
            kernel += dur;
            byOp[op] = byOp.GetValueOrDefault(op) + dur;
            byNode[name] = byNode.GetValueOrDefault(name) + dur;
        }

        var gaps = decode.Zip(decode.Skip(1), (a, b) => (double)(b.Ts - a.Ts - a.Dur)).ToList();
        var n = decode.Count;
        return new Profile(n, decode.Sum(r => r.Dur) / 1000.0 / n, kernel / 1000 / n, gaps.Count == 0 ? 0 : Benchmarks.Median(gaps) / 1000,
            byOp.ToDictionary(p => p.Key, p => p.Value / 1000 / n), byNode.ToDictionary(p => p.Key, p => p.Value / 1000 / n));
    }

    private static void Report(int length, Profile ours, Profile theirs, string first = "OnnxLM", string second = "GenAI")
    {
        Console.WriteLine();
        if (length > 0) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Profiled decode runs after a {length}-token prompt (per run; OnnxLM {ours.Runs} runs, GenAI {theirs.Runs}):"));
        Console.WriteLine();
        Console.WriteLine($"| | {first} ms | {second} ms | {first} − {second} |");
        Console.WriteLine("|---|---:|---:|---:|");
        void Row(string what, double a, double b) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {what} | {a:F2} | {b:F2} | {a - b:+0.00;-0.00} |"));
        Row("run (inside ONNX Runtime)", ours.RunMs, theirs.RunMs);
        Row("kernels", ours.KernelMs, theirs.KernelMs);
        Row("host between runs (median)", ours.GapMs, theirs.GapMs);
        foreach (var op in ours.ByOp.Keys.Union(theirs.ByOp.Keys).OrderByDescending(k => Math.Max(ours.ByOp.GetValueOrDefault(k), theirs.ByOp.GetValueOrDefault(k))))
        {
            Row("  " + op, ours.ByOp.GetValueOrDefault(op), theirs.ByOp.GetValueOrDefault(op));
        }

        Console.WriteLine();
        Console.WriteLine($"Nodes that differ most (ms per run, {first} − {second}):");
        foreach (var node in ours.ByNode.Keys.Union(theirs.ByNode.Keys)
            .OrderByDescending(k => Math.Abs(ours.ByNode.GetValueOrDefault(k) - theirs.ByNode.GetValueOrDefault(k))).Take(8))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {node}: {ours.ByNode.GetValueOrDefault(node):F3} vs {theirs.ByNode.GetValueOrDefault(node):F3}"));
        }
    }
}
