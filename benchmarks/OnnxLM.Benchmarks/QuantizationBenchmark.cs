using System.Diagnostics;
using System.Globalization;
using OnnxLM;
using OnnxLM.Explain;
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

    public static async Task<int> RunAsync(string[] args)
    {
        if (args is ["rss", var runtime, var modelFolder, var promptIds])
        {
            return MeasureRss(runtime, modelFolder, [.. promptIds.Split(',').Select(id => int.Parse(id, CultureInfo.InvariantCulture))]);
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

            Console.WriteLine($"CPU, {Environment.ProcessorCount} cores; greedy decode of {NewTokens} tokens after \"{Prompt}\"; medians of 5 alternating runs");
            var cpu = new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu };
            var models = folders.Select(f => LanguageModel.Load(f.Folder, cpu)).ToList();
            var genai = folders.Select(f => GenAIModel(f.Folder)).ToList();
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

                for (var run = 0; run < 5; run++)
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
                Console.WriteLine("| model | file MB | weight bytes read per token | Revelation bits per byte | OnnxLM decode tokens/s | × fp32 | GB/s of weights | GenAI decode tokens/s | same greedy tokens as GenAI | same as fp32 | peak RSS OnnxLM / GenAI (MiB) |");
                Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
                double fp32Rate = 0;
                for (var i = 0; i < folders.Count; i++)
                {
                    var (name, folder) = folders[i];
                    var ours = NewTokens / Median(times[i].Ours);
                    var theirs = NewTokens / Median(times[i].Theirs);
                    if (i == 0) fp32Rate = ours;
                    var bytes = WeightBytesPerToken(models[i].Info.GraphPath);
                    var bitsPerByte = await RevelationBitsPerByteAsync(models[i]);
                    var fileMb = new DirectoryInfo(folder).EnumerateFiles("model.onnx*").Sum(f => f.Length) / 1e6;
                    var rss = $"{ChildRss("onnxlm", folder, ids):F0} / {ChildRss("genai", folder, ids):F0}";
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {name} | {fileMb:F1} | {bytes / 1e6:F2} MB | {bitsPerByte:F4} | {ours:F1} | {ours / fp32Rate:F2} | {bytes * ours / 1e9:F1} | {theirs:F1} | " +
                        $"{(tokens[i].Ours.SequenceEqual(tokens[i].Theirs) ? "yes" : "NO")} | {(tokens[i].Ours.SequenceEqual(tokens[0].Ours) ? "yes" : $"first {tokens[i].Ours.Zip(tokens[0].Ours).TakeWhile(p => p.First == p.Second).Count()}")} | {rss} |"));
                }

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

    private static GenAI.Model GenAIModel(string folder)
    {
        using var config = new GenAI.Config(folder);
        config.ClearProviders();
        return new GenAI.Model(config);
    }

    /// <summary>The same with ONNX Runtime GenAI: prefill by AppendTokens, then time the GenerateNextToken calls.</summary>
    private static (int[] Tokens, double Seconds) DecodeGenAI(GenAI.Model model, int[] prompt)
    {
        using var parameters = new GenAI.GeneratorParams(model);
        parameters.SetSearchOption("max_length", prompt.Length + NewTokens);
        parameters.SetSearchOption("min_length", prompt.Length + NewTokens);
        parameters.SetSearchOption("do_sample", false);
        using var generator = new GenAI.Generator(model, parameters);
        generator.AppendTokens(prompt);
        var clock = Stopwatch.StartNew();
        while (!generator.IsDone()) generator.GenerateNextToken();
        var seconds = clock.Elapsed.TotalSeconds;
        return (generator.GetSequence(0).ToArray()[prompt.Length..], seconds);
    }

    /// <summary>
    /// Bytes of weights one decoding step reads: every matrix a MatMul or MatMulNBits multiplies by (float weights at
    /// 4 bytes, as ONNX Runtime computes float16-stored weights in float32 after folding their casts; quantized ones as
    /// stored, scales and zero points included). The embedding lookup reads one row and is left out.
    /// </summary>
    private static long WeightBytesPerToken(string graph)
    {
        var file = OnnxModelFile.Read(graph);
        string Source(string name)
        {
            for (var hops = 0; hops < 4 && !file.Initializers.ContainsKey(name); hops++)
            {
                name = file.Nodes.FirstOrDefault(n => n.Outputs.Contains(name) && n.OpType is "Cast" or "Transpose")?.Inputs[0] ?? name;
            }

            return name;
        }

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
                if (!file.Initializers.TryGetValue(Source(operand), out var init)) continue; // activations (attention)
                bytes += init.DataType is 1 or 10 or 16 ? 4 * init.ElementCount : init.ByteCount;
            }
        }

        return bytes;
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
            using var model = GenAIModel(folder);
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

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
