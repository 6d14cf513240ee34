using System.Diagnostics;
using System.Globalization;
using OnnxLM;
using OnnxLM.ModelBuilder;
using GenAI = Microsoft.ML.OnnxRuntimeGenAI;

/// <summary>
/// kjv-tiny as float32, int8 and int4 (built here from the committed model with OnnxLM.ModelBuilder): held-out
/// Revelation bits per byte, bytes of weights read per decoded token, decode tokens/s of OnnxLM and ONNX Runtime GenAI
/// on the same folders (with a check that both decode the same greedy tokens), and the peak resident memory of a process
/// that loads the folder and decodes (one child process per folder and runtime, so the numbers do not mix).
/// </summary>
internal static class QuantizationBenchmark
{
    private const string Prompt = "And the LORD said unto Moses,";
    private const int NewTokens = 200;
    private const int Runs = 7;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args is ["rss", var runtime, var modelFolder, var promptIds])
        {
            return MeasureRss(runtime, modelFolder, [.. promptIds.Split(',').Select(id => int.Parse(id, CultureInfo.InvariantCulture))]);
        }


        if (args is ["optimized", var optimizedFolder])
        {
            // The graph ONNX Runtime actually runs after its optimizations: operator counts.
            var optimized = Path.Combine(Path.GetTempPath(), $"onnxlm-optimized-{Guid.NewGuid():N}.onnx");
            using (LanguageModel.Load(optimizedFolder, new LanguageModelOptions
            {
                ExecutionProvider = ExecutionProvider.Cpu, ConfigureSessionOptions = o => o.OptimizedModelFilePath = optimized,
            }))
            {
            }

            var ops = OnnxModelFile.Read(optimized).Nodes.GroupBy(n => n.OpType).OrderByDescending(g => g.Count());
            Console.WriteLine(string.Join(", ", ops.Select(g => $"{g.Key} {g.Count()}")));
            File.Delete(optimized);
            return 0;
        }

        if (args is ["profile", var profiled])
        {
            using var probe = LanguageModel.Load(profiled, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
            Console.WriteLine(Profile(profiled, profiled, probe.Tokenizer.Encode(Prompt)));
            return 0;
        }

        var root = Directory.CreateTempSubdirectory("onnxlm-quant-bench-").FullName;
        try
        {
            var source = Path.Combine(Benchmarks.RepoRoot(), "models", "kjv-tiny");
            (string Name, ModelBuilderOptions Options)[] variants =
            [
                ("fp32", new ModelBuilderOptions { ContextLength = 256 }),
                ("int8", new ModelBuilderOptions { ContextLength = 256, Float16Weights = true, Quantization = WeightQuantization.Parse("int8") }),
                ("int4", new ModelBuilderOptions { ContextLength = 256, Float16Weights = true, Quantization = WeightQuantization.Parse("int4") }),
                ("int4, scale search", new ModelBuilderOptions
                {
                    ContextLength = 256, Float16Weights = true, Quantization = new WeightQuantization { Method = QuantizationMethod.ScaleSearch },
                }),
            ];
            var folders = new List<(string Name, string Folder)>();
            foreach (var (name, options) in variants)
            {
                var folder = Path.Combine(root, name.Replace(", ", "-").Replace(' ', '-'));
                DecoderModelBuilder.Convert(source, folder, options);
                folders.Add((name, folder));
            }

            Console.WriteLine($"CPU, {Environment.ProcessorCount} cores; greedy decode of {NewTokens} tokens after \"{Prompt}\"; {Runs} runs, each model in turn; tokens/s as median (best)");
            // --no-spin: ONNX Runtime's intra-op threads sleep instead of spinning between operators (for a machine shared with other work).
            var noSpin = args.Contains("--no-spin");
            var cpu = new LanguageModelOptions
            {
                ExecutionProvider = ExecutionProvider.Cpu,
                ConfigureSessionOptions = noSpin ? o => o.AddSessionConfigEntry("session.intra_op.allow_spinning", "0") : null,
            };
            if (noSpin) Console.WriteLine("OnnxLM sessions with session.intra_op.allow_spinning = 0");
            var models = folders.Select(f => LanguageModel.Load(f.Folder, cpu)).ToList();
            var genai = folders.Select(f => GenAIGreedy.Model(f.Folder)).ToList();
            try
            {
                var ids = models[0].Tokenizer.Encode(Prompt);
                var times = folders.Select(_ => (Ours: new List<double>(), Theirs: new List<double>())).ToList();
                var tokens = new (int[] Ours, int[] Theirs)[folders.Count];
                for (var i = 0; i < folders.Count; i++)
                {
                    // Warm-up: the JIT's optimized tier and ONNX Runtime's first runs.
                    var clock = Stopwatch.StartNew();
                    while (clock.ElapsedMilliseconds < 1000) DecodeOnnxLM(models[i], ids);
                    clock.Restart();
                    while (clock.ElapsedMilliseconds < 1000) DecodeGenAI(genai[i], ids);
                }

                for (var run = 0; run < Runs; run++)
                {
                    for (var i = 0; i < folders.Count; i++)
                    {
                        var (ours, oursSeconds) = DecodeOnnxLM(models[i], ids);
                        var (theirs, theirsSeconds) = DecodeGenAI(genai[i], ids);
                        times[i].Ours.Add(oursSeconds);
                        times[i].Theirs.Add(theirsSeconds);
                        tokens[i] = (ours, theirs);
                    }
                }

                Console.WriteLine();
                Console.WriteLine("| model | file MB | weight bytes read per token | Revelation bits per byte | OnnxLM decode tokens/s | × fp32 | GB/s of weights (best) | GenAI decode tokens/s | same greedy tokens as GenAI | same as fp32 | peak RSS OnnxLM / GenAI (MiB) |");
                Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
                double fp32Rate = 0, fp32Best = 0;
                for (var i = 0; i < folders.Count; i++)
                {
                    var (name, folder) = folders[i];
                    var ours = NewTokens / Benchmarks.Median(times[i].Ours);
                    var theirs = NewTokens / Benchmarks.Median(times[i].Theirs);
                    var (oursBest, theirsBest) = (NewTokens / times[i].Ours.Min(), NewTokens / times[i].Theirs.Min());
                    if (i == 0) (fp32Rate, fp32Best) = (ours, oursBest);
                    var bytes = WeightBytesPerToken(models[i].Info.GraphPath);
                    var bitsPerByte = await RevelationBitsPerByteAsync(models[i]);
                    var fileMb = new DirectoryInfo(folder).EnumerateFiles("model.onnx*").Sum(f => f.Length) / 1e6;
                    var rss = $"{ChildRss("onnxlm", folder, ids):F0} / {ChildRss("genai", folder, ids):F0}";
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {name} | {fileMb:F1} | {bytes / 1e6:F2} MB | {bitsPerByte:F4} | {ours:F0} ({oursBest:F0}) | {ours / fp32Rate:F2} ({oursBest / fp32Best:F2}) | {bytes * oursBest / 1e9:F1} | {theirs:F0} ({theirsBest:F0}) | " +
                        $"{(tokens[i].Ours.SequenceEqual(tokens[i].Theirs) ? "yes" : "NO")} | {(tokens[i].Ours.SequenceEqual(tokens[0].Ours) ? "yes" : $"first {tokens[i].Ours.Zip(tokens[0].Ours).TakeWhile(p => p.First == p.Second).Count()}")} | {rss} |"));
                }

                // The same decode with ONNX Runtime on one thread: no thread-pool hand-offs per operator, one core's bandwidth.
                Console.WriteLine();
                Console.WriteLine("| model | OnnxLM decode tokens/s, 1 thread | × fp32 | ms per token | GB/s of weights |");
                Console.WriteLine("|---|---|---|---|---|");
                var single = folders.Select(f => LanguageModel.Load(f.Folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, IntraOpThreadCount = 1 })).ToList();
                try
                {
                    var singleTimes = single.Select(_ => new List<double>()).ToList();
                    foreach (var m in single)
                    {
                        var clock = Stopwatch.StartNew();
                        while (clock.ElapsedMilliseconds < 1000) DecodeOnnxLM(m, ids);
                    }

                    for (var run = 0; run < Runs; run++)
                    {
                        for (var i = 0; i < single.Count; i++) singleTimes[i].Add(DecodeOnnxLM(single[i], ids).Seconds);
                    }

                    var baseline = NewTokens / Benchmarks.Median(singleTimes[0]);
                    for (var i = 0; i < single.Count; i++)
                    {
                        var rate = NewTokens / Benchmarks.Median(singleTimes[i]);
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"| {folders[i].Name} | {rate:F0} | {rate / baseline:F2} | {1000 / rate:F2} | {WeightBytesPerToken(single[i].Info.GraphPath) * rate / 1e9:F1} |"));
                    }
                }
                finally
                {
                    foreach (var m in single) m.Dispose();
                }

                Console.WriteLine();
                Console.WriteLine("ONNX Runtime's profile of the decode steps (default threads; the profiler slows every operator, so shares, not times):");
                Console.WriteLine("| model | weight products (MatMul/MatMulNBits by a weight) | attention products | other operators | operator ms per step (profiled) | wall ms per step (profiled) |");
                Console.WriteLine("|---|---|---|---|---|---|");
                foreach (var (name, folder) in folders) Console.WriteLine(Profile(name, folder, ids));

                Console.WriteLine();
                for (var i = 0; i < folders.Count; i++)
                {
                    Console.WriteLine($"{folders[i].Name} greedy: {Prompt}{models[i].Tokenizer.Decode(tokens[i].Ours.Take(60).ToArray())}");
                }

                return tokens.All(t => t.Ours.SequenceEqual(t.Theirs)) ? 0 : 2;
            }
            finally
            {
                foreach (var m in models) m.Dispose();
                foreach (var g in genai) g.Dispose();
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Decodes <see cref="NewTokens"/> greedy tokens after a prefill of the prompt; times the decoding steps only.</summary>
    private static (int[] Tokens, double Seconds) DecodeOnnxLM(LanguageModel model, int[] prompt)
    {
        using var session = model.CreateSession(prompt.Length + NewTokens);
        session.Append(prompt);
        var tokens = new int[NewTokens];
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < NewTokens; i++)
        {
            var logits = session.NextTokenLogits;
            var best = 0;
            for (var v = 1; v < logits.Length; v++) if (logits[v] > logits[best]) best = v;
            tokens[i] = best;
            if (i + 1 < NewTokens) session.Append(best);
        }

        return (tokens, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The same with ONNX Runtime GenAI: prefill by AppendTokens, then time the GenerateNextToken calls.</summary>
    private static (int[] Tokens, double Seconds) DecodeGenAI(GenAI.Model model, int[] prompt)
    {
        using var greedy = new GenAIGreedy(model, prompt, NewTokens);
        var clock = Stopwatch.StartNew();
        while (!greedy.Generator.IsDone()) greedy.Generator.GenerateNextToken();
        var seconds = clock.Elapsed.TotalSeconds;
        return (greedy.NewTokens, seconds);
    }

    /// <summary>
    /// Bytes of weights one decoding step reads: every matrix a MatMul or MatMulNBits multiplies by (float weights at
    /// 4 bytes, as ONNX Runtime computes float16-stored weights in float32 after folding their casts; quantized ones as
    /// stored, scales and zero points included). The embedding lookup reads one row and is left out.
    /// </summary>
    internal static long WeightBytesPerToken(string graph)
    {
        var file = OnnxModelFile.Read(graph);
        long bytes = 0;
        foreach (var node in file.Nodes)
        {
            var operands = node.OpType switch
            {
                "MatMul" => node.Inputs.Skip(1).Take(1),
                "MatMulNBits" => node.Inputs.Skip(1),
                _ => [],
            };
            foreach (var operand in operands)
            {
                if (WeightInitializer(file, operand) is not { } init) continue; // activations (attention)
                bytes += init.DataType is 1 or 10 or 16 ? 4 * init.ElementCount : init.ByteCount;
            }
        }

        return bytes;
    }

    /// <summary>
    /// Decodes with ONNX Runtime's profiler on and sums its per-operator kernel times over the decode steps (the prefill
    /// run is left out): products by a weight, products of attention (query × keys, probabilities × values), the rest,
    /// as shares of the total (the profiler's own cost per operator inflates the times).
    /// </summary>
    private static string Profile(string name, string folder, int[] ids)
    {
        var prefix = Path.Combine(Path.GetTempPath(), $"onnxlm-profile-{Guid.NewGuid():N}");
        using var model = LanguageModel.Load(folder, new LanguageModelOptions
        {
            ExecutionProvider = ExecutionProvider.Cpu,
            ConfigureSessionOptions = o => { o.EnableProfiling = true; o.ProfileOutputPathPrefix = prefix; },
        });
        var file = OnnxModelFile.Read(model.Info.GraphPath);
        var weighted = file.Nodes.Where(n => n.OpType == "MatMulNBits" || (n.OpType == "MatMul" && WeightInitializer(file, n.Inputs[1]) is not null)).Select(n => n.Name).ToHashSet();
        var (_, seconds) = DecodeOnnxLM(model, ids);
        var trace = model.Runtime.Graph.Session.EndProfiling();
        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(trace));
            var runs = 0;
            double weights = 0, attention = 0, other = 0;
            var otherCount = 0;
            foreach (var e in json.RootElement.EnumerateArray())
            {
                var cat = e.GetProperty("cat").GetString();
                var eventName = e.GetProperty("name").GetString()!;
                if (cat == "Session" && eventName == "model_run") runs++;
                if (cat != "Node" || !eventName.EndsWith("_kernel_time", StringComparison.Ordinal) || runs == 0) continue; // runs == 0: the prefill
                var node = eventName[..^"_kernel_time".Length];
                var op = e.GetProperty("args").GetProperty("op_name").GetString();
                var us = e.GetProperty("dur").GetDouble();
                if (weighted.Contains(node)) weights += us;
                else if (op == "MatMul") attention += us;
                else (other, otherCount) = (other + us, otherCount + 1);
            }

            // Events of a run come before its model_run event, so the first run's (the prefill's) kernels are skipped above.
            var steps = Math.Max(1, runs - 1);
            var total = weights + attention + other;
            return string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {100 * weights / total:F0} % | {100 * attention / total:F0} % | {100 * other / total:F0} % ({otherCount / steps} per step) | {total / steps / 1000:F2} | {seconds * 1000 / (NewTokens - 1):F2} |");
        }
        finally
        {
            File.Delete(trace);
        }
    }

    /// <summary>The initializer a node input comes from, through casts and transposes (which ONNX Runtime folds at load); null for activations.</summary>
    private static OnnxModelFile.Initializer? WeightInitializer(OnnxModelFile file, string name)
    {
        for (var hops = 0; hops < 4; hops++)
        {
            if (file.Initializers.TryGetValue(name, out var init)) return init;
            var producer = file.Nodes.FirstOrDefault(n => n.Outputs.Contains(name) && n.OpType is "Cast" or "Transpose");
            if (producer is null) return null;
            name = producer.Inputs[0];
        }

        return null;
    }

    private static async Task<double> RevelationBitsPerByteAsync(LanguageModel model)
    {
        double logProb = 0;
        long bytes = 0;
        foreach (var chapter in File.ReadLines(Path.Combine(Benchmarks.RepoRoot(), "tests", "data", "kjv", "revelation.txt")))
        {
            var result = await model.ScorePerplexityAsync(chapter, new PerplexityOptions { WindowLength = 256 });
            logProb += result.LogProb;
            bytes += result.ByteCount;
        }

        return -logProb / Math.Log(2) / bytes;
    }

    /// <summary>Runs this program again as "quantization rss runtime folder" and reads the peak RSS (MiB) it prints.</summary>
    private static double ChildRss(string runtime, string folder, int[] ids)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") start.ArgumentList.Add(typeof(QuantizationBenchmark).Assembly.Location);
        foreach (var a in new[] { "quantization", "rss", runtime, folder, string.Join(',', ids) }) start.ArgumentList.Add(a);
        using var child = Process.Start(start)!;
        var output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        return child.ExitCode == 0 ? double.Parse(output.Trim().Split('\n')[^1], CultureInfo.InvariantCulture) : double.NaN;
    }

    /// <summary>In the child: load the folder, decode once, print the peak resident set (VmHWM) in MiB.</summary>
    private static int MeasureRss(string runtime, string folder, int[] ids)
    {
        if (runtime == "genai")
        {
            using var model = GenAIGreedy.Model(folder);
            DecodeGenAI(model, ids);
        }
        else
        {
            using var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
            DecodeOnnxLM(model, ids);
        }

        Console.WriteLine((Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0)).ToString("F1", CultureInfo.InvariantCulture));
        return 0;
    }

}
