using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxLM;
using GenAI = Microsoft.ML.OnnxRuntimeGenAI;

/// <summary>
/// Issue 14's side-by-side decode benchmark, per model folder (kjv-tiny, every ../shared model ONNX Runtime GenAI loads,
/// the GroupQueryAttention build of kjv-tiny when built): greedy decode tokens/s of OnnxLM's session loop, of OnnxLM's
/// full generation loop (samplers, stop rules, text), of a bare <see cref="InferenceSession.RunWithBinding"/> loop (the
/// floor) and of GenAI with its best thread setting; managed bytes per token; time to first token and prefill tokens/s
/// for prompts of 16/128/250 tokens. Runs alternate, and every ratio is given as min/median/max over the rounds.
/// </summary>
internal static class DecodeBenchmark
{
    private const int NewTokens = 128;
    private const int Rounds = 5;

    public static async Task<int> RunAsync(string[] folders)
    {
        var root = Benchmarks.RepoRoot();
        if (folders.Length == 0)
        {
            var shared = Path.GetFullPath(Path.Combine(root, "..", "shared", "models"));
            folders = [Path.Combine(root, "models", "kjv-tiny"), Path.Combine(root, "build", "work", "kjv-tiny-gqa"),
                .. new[] { "tiny-gpt2-fp32", "tiny-llama-fp16", "tiny-phi3-gqa-fp16", "torch-llama-fp32" }.Select(n => Path.Combine(shared, n))];
            folders = folders.Where(Directory.Exists).ToArray();
        }

        Console.WriteLine($"{Environment.ProcessorCount} cores, every runtime at GenAI's fastest intra-op thread count, {NewTokens} greedy tokens after a 16-token prompt, {Rounds} alternating rounds");
        Console.WriteLine();
        Console.WriteLine("| model | OnnxLM session tok/s | same, spinning off | OnnxLM generate tok/s | bare loop tok/s | GenAI tok/s (threads) | session ÷ GenAI min/med/max | generate ÷ GenAI min/med/max | host overhead vs bare (med) | managed B/token session / generate / GenAI | same tokens |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
        var prefillRows = new List<string>();
        var failed = false;
        foreach (var folder in folders)
        {
            try
            {
                var (row, prefill, same) = await MeasureAsync(folder);
                Console.WriteLine(row);
                prefillRows.AddRange(prefill);
                failed |= !same;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Console.WriteLine($"| {Path.GetFileName(folder)} | skipped: {e.GetType().Name}: {e.Message.Split('\n')[0]} |");
            }
        }

        Console.WriteLine();
        Console.WriteLine("| model | prompt tokens | OnnxLM time to first token ms (med) | GenAI ms (med) | OnnxLM ÷ GenAI speed min/med/max | OnnxLM prefill tok/s |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var row in prefillRows) Console.WriteLine(row);
        return failed ? 2 : 0;
    }

    private static async Task<(string Row, List<string> Prefill, bool Same)> MeasureAsync(string folder)
    {
        var name = Path.GetFileName(folder);
        int[] prompt;
        using (var probe = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu })) prompt = PromptIds(probe, 16);
        // GenAI gets the thread count it decodes fastest with; OnnxLM and the bare loop then run with the same.
        var (genai, threads) = BestGenAI(folder, prompt);
        using var _ = genai;
        using var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, IntraOpThreadCount = threads });
        using var bare = new BareLoop(model.Info.GraphPath, model.Runtime.Graph.Signature, threads);
        // The same with ONNX Runtime's intra-op threads sleeping between operators instead of spinning (for loaded machines).
        using var calm = LanguageModel.Load(folder, new LanguageModelOptions
        {
            ExecutionProvider = ExecutionProvider.Cpu, IntraOpThreadCount = threads,
            ConfigureSessionOptions = o => o.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"),
        });
        var options = new GenerationOptions { MaxNewTokens = NewTokens, StopTokenIds = [] };

        // Warm-up (JIT tiers, ONNX Runtime's arenas), then alternating rounds.
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 1500)
        {
            SessionLoop(model, prompt);
            SessionLoop(calm, prompt);
            await GenerateLoopAsync(model, prompt, options);
            bare.Decode(prompt, NewTokens);
            DecodeGenAI(genai, prompt);
        }

        var session = new List<double>();
        var calmTimes = new List<double>();
        var generate = new List<double>();
        var bareTimes = new List<double>();
        var genaiTimes = new List<double>();
        long sessionBytes = 0, generateBytes = 0, genaiBytes = 0;
        var same = true;
        for (var round = 0; round < Rounds; round++)
        {
            var (ours, seconds, bytes) = SessionLoop(model, prompt);
            session.Add(seconds);
            sessionBytes = bytes;
            calmTimes.Add(SessionLoop(calm, prompt).Seconds);
            var (generated, generateSeconds, allBytes) = await GenerateLoopAsync(model, prompt, options);
            generate.Add(generateSeconds);
            generateBytes = allBytes;
            var (floor, bareSeconds) = bare.Decode(prompt, NewTokens);
            bareTimes.Add(bareSeconds);
            var (theirs, genaiSeconds, theirBytes) = DecodeGenAI(genai, prompt);
            genaiTimes.Add(genaiSeconds);
            genaiBytes = theirBytes;
            same &= ours.SequenceEqual(theirs) && ours.SequenceEqual(floor) && ours.SequenceEqual(generated);
        }

        var steps = NewTokens - 1;
        string Rate(List<double> s) => (steps / Benchmarks.Median(s)).ToString("F0", CultureInfo.InvariantCulture);
        string Ratios(List<double> ours, List<double> theirs)
        {
            var r = ours.Zip(theirs, (o, t) => t / o).Order().ToList();
            return string.Create(CultureInfo.InvariantCulture, $"{r[0]:F2} / {Benchmarks.Median(r):F2} / {r[^1]:F2}");
        }

        var overhead = Benchmarks.Median(session.Zip(bareTimes, (s, b) => (s - b) / s).ToList());
        var row = string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {Rate(session)} | {Rate(calmTimes)} | {Rate(generate)} | {Rate(bareTimes)} | {Rate(genaiTimes)} ({(threads == 0 ? "default" : threads.ToString(CultureInfo.InvariantCulture))}) | {Ratios(session, genaiTimes)} | {Ratios(generate, genaiTimes)} | {100 * overhead:F1} % | {sessionBytes / (double)steps:F0} / {generateBytes / (double)NewTokens:F0} / {genaiBytes / (double)steps:F0} | {same} |");

        var prefill = new List<string>();
        foreach (var length in new[] { 16, 128, 250 })
        {
            if (length + 2 > model.Info.ContextLength) continue;
            var ids = PromptIds(model, length);
            var ourTimes = new List<double>();
            var theirTimes = new List<double>();
            for (var round = 0; round < Rounds + 1; round++)
            {
                var o = FirstTokenOnnxLM(model, ids);
                var t = FirstTokenGenAI(genai, ids);
                if (round == 0) continue; // warm-up for this length
                ourTimes.Add(o);
                theirTimes.Add(t);
            }

            prefill.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {length} | {1000 * Benchmarks.Median(ourTimes):F2} | {1000 * Benchmarks.Median(theirTimes):F2} | {Ratios(ourTimes, theirTimes)} | {length / Benchmarks.Median(ourTimes):F0} |"));
        }

        return (row, prefill, same);
    }

    /// <summary><paramref name="length"/> prompt ids: a KJV passage tokenized and repeated as needed, below the vocabulary.</summary>
    private static int[] PromptIds(LanguageModel model, int length)
    {
        var text = File.ReadAllText(Path.Combine(Benchmarks.RepoRoot(), "tests", "data", "kjv", "revelation.txt"));
        var ids = model.HasTokenizer ? model.Tokenizer.Encode(text[..4000]).Where(i => i < model.Info.VocabularySize).ToArray() : [];
        if (ids.Length == 0) ids = Enumerable.Range(1, 200).Select(i => i % model.Info.VocabularySize).ToArray();
        return Enumerable.Range(0, length).Select(i => ids[i % ids.Length]).ToArray();
    }

    /// <summary>OnnxLM's session API with an argmax: the decode steps only, and the managed bytes they allocate.</summary>
    private static (int[] Tokens, double Seconds, long Bytes) SessionLoop(LanguageModel model, int[] prompt)
    {
        using var session = model.CreateSession(prompt.Length + NewTokens);
        session.Append(prompt);
        var tokens = new int[NewTokens];
        tokens[0] = Benchmarks.ArgMax(session.NextTokenLogits);
        var bytes = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        for (var i = 1; i < NewTokens; i++)
        {
            session.Append(tokens[i - 1]);
            tokens[i] = Benchmarks.ArgMax(session.NextTokenLogits);
        }

        return (tokens, clock.Elapsed.TotalSeconds, GC.GetAllocatedBytesForCurrentThread() - bytes);
    }

    /// <summary>OnnxLM's streaming generation (greedy pipeline, stop rules, text): first token to last, and the process's managed bytes.</summary>
    private static async Task<(int[] Tokens, double Seconds, long Bytes)> GenerateLoopAsync(LanguageModel model, int[] prompt, GenerationOptions options)
    {
        var tokens = new List<int>(NewTokens);
        var clock = new Stopwatch();
        var bytes = GC.GetTotalAllocatedBytes(precise: true);
        await foreach (var token in model.GenerateStreamingAsync(prompt, options))
        {
            if (tokens.Count == 0) clock.Start();
            tokens.Add(token.Id);
        }

        return (tokens.ToArray(), clock.Elapsed.TotalSeconds, GC.GetTotalAllocatedBytes(precise: true) - bytes);
    }

    private static double FirstTokenOnnxLM(LanguageModel model, int[] prompt)
    {
        var clock = Stopwatch.StartNew();
        using var session = model.CreateSession(prompt.Length + 1);
        session.Append(prompt);
        Benchmarks.ArgMax(session.NextTokenLogits);
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>GenAI with the intra-op thread count (ONNX Runtime's default, 1 or 2) that decodes fastest here.</summary>
    private static (GenAI.Model Model, int Threads) BestGenAI(string folder, int[] prompt)
    {
        GenAI.Model? best = null;
        var bestThreads = 0;
        var bestSeconds = double.MaxValue;
        foreach (var threads in new[] { 0, 1, 2 })
        {
            var candidate = GenAIGreedy.Model(folder, threads);
            DecodeGenAI(candidate, prompt);
            var seconds = Enumerable.Range(0, 3).Min(_ => DecodeGenAI(candidate, prompt).Seconds);
            if (seconds < bestSeconds)
            {
                best?.Dispose();
                (best, bestSeconds, bestThreads) = (candidate, seconds, threads);
            }
            else
            {
                candidate.Dispose();
            }
        }

        return (best!, bestThreads);
    }

    private static (int[] Tokens, double Seconds, long Bytes) DecodeGenAI(GenAI.Model model, int[] prompt)
    {
        using var greedy = new GenAIGreedy(model, prompt, NewTokens);
        greedy.Generator.GenerateNextToken(); // the first token comes from the prefill's logits
        var bytes = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        while (!greedy.Generator.IsDone()) greedy.Generator.GenerateNextToken();
        var seconds = clock.Elapsed.TotalSeconds;
        bytes = GC.GetAllocatedBytesForCurrentThread() - bytes;
        return (greedy.NewTokens, seconds, bytes);
    }

    private static double FirstTokenGenAI(GenAI.Model model, int[] prompt)
    {
        var clock = Stopwatch.StartNew();
        using var greedy = new GenAIGreedy(model, prompt, 1);
        greedy.Generator.GenerateNextToken();
        return clock.Elapsed.TotalSeconds;
    }



    /// <summary>
    /// The floor: ONNX Runtime's managed API and nothing else. Inputs are fresh tensors over arrays, ONNX Runtime allocates
    /// the presents and they are bound back as the next past; an argmax picks the token. No checks, no samplers, no text.
    /// </summary>
    private sealed class BareLoop(string graphPath, GraphSignature sig, int threads) : IDisposable
    {
        private readonly InferenceSession _session = Open(graphPath, threads);

        private static InferenceSession Open(string graphPath, int threads)
        {
            using var options = new SessionOptions();
            if (threads > 0) options.IntraOpNumThreads = threads;
            return new InferenceSession(graphPath, options);
        }

        public (int[] Tokens, double Seconds) Decode(int[] prompt, int count)
        {
            using var binding = _session.CreateIoBinding();
            using var runOptions = new RunOptions();
            var past = sig.PastNames.Select(_ => OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, sig.KvType,
                sig.Layout == KvCacheLayout.Combined ? [2, 1, sig.KeyValueHeadCount, 0, sig.HeadSize] : [1, sig.KeyValueHeadCount, 0, sig.HeadSize])).ToArray();
            var tokens = new int[count];
            var length = 0;
            var clock = new Stopwatch();
            int[] next = prompt;
            for (var i = 0; i < count; i++)
            {
                if (i == 1) clock.Start(); // decode steps only
                var n = next.Length;
                var inputs = new List<OrtValue>
                {
                    Int(sig.IdType, next.Select(t => (long)t).ToArray(), [1, n]),
                };
                binding.BindInput(sig.InputIds, inputs[0]);
                if (sig.AttentionMask is { } mask)
                {
                    inputs.Add(Int(sig.MaskType, Enumerable.Repeat(1L, length + n).ToArray(), [1, length + n]));
                    binding.BindInput(mask, inputs[^1]);
                }

                if (sig.PositionIds is { } positions)
                {
                    inputs.Add(Int(sig.PositionType, Enumerable.Range(length, n).Select(p => (long)p).ToArray(), [1, n]));
                    binding.BindInput(positions, inputs[^1]);
                }

                if (sig.UseCacheBranch is { } branch)
                {
                    inputs.Add(OrtValue.CreateTensorValueFromMemory(new[] { length > 0 }, [1]));
                    binding.BindInput(branch, inputs[^1]);
                }

                for (var p = 0; p < past.Length; p++) binding.BindInput(sig.PastNames[p], past[p]);
                binding.BindOutputToDevice(sig.Logits, OrtMemoryInfo.DefaultInstance);
                foreach (var present in sig.PresentNames) binding.BindOutputToDevice(present, OrtMemoryInfo.DefaultInstance);
                _session.RunWithBinding(runOptions, binding);
                var outputs = binding.GetOutputValues().ToArray();
                binding.ClearBoundInputs();
                binding.ClearBoundOutputs();
                foreach (var value in inputs.Concat(past)) value.Dispose();
                past = outputs[1..];
                var vocab = (int)outputs[0].GetTensorTypeAndShape().Shape[2];
                var row = new float[vocab];
                if (sig.LogitsType == TensorElementType.Float) outputs[0].GetTensorDataAsSpan<float>().Slice((n - 1) * vocab, vocab).CopyTo(row);
                else
                {
                    var halves = outputs[0].GetTensorDataAsSpan<Float16>().Slice((n - 1) * vocab, vocab);
                    for (var v = 0; v < vocab; v++) row[v] = (float)(Half)BitConverter.UInt16BitsToHalf(halves[v].value);
                }

                outputs[0].Dispose();
                tokens[i] = Benchmarks.ArgMax(row);
                length += n;
                next = [tokens[i]];
            }

            var seconds = clock.Elapsed.TotalSeconds;
            foreach (var value in past) value.Dispose();
            return (tokens, seconds);
        }

        private static OrtValue Int(TensorElementType type, long[] values, long[] shape) =>
            type == TensorElementType.Int64 ? OrtValue.CreateTensorValueFromMemory(values, shape)
                : OrtValue.CreateTensorValueFromMemory(values.Select(v => (int)v).ToArray(), shape);

        public void Dispose() => _session.Dispose();
    }
}
