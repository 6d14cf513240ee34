using LLama;
using LLama.Common;
using LLama.Native;

/// <summary>
/// LLamaSharp (llama.cpp's CPU backend) driven by token ids, as the scale benchmark compares it: one context, greedy
/// argmax over the logits it returns, the KV cache cleared between runs. <see cref="Exact"/> contexts keep the KV cache
/// in F32 with flash attention off (the token-identity check against OnnxLM fp32); otherwise llama.cpp's defaults
/// (F16 cache, flash attention automatic) as a user gets them.
/// </summary>
internal sealed class LlamaSharpEngine : IDisposable
{
    private static bool s_quiet;
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;
    private readonly LLamaBatch _batch = new();

    private readonly string _path;

    private LlamaSharpEngine(string path, LLamaWeights weights, LLamaContext context, bool exact)
    {
        _path = path;
        _weights = weights;
        _context = context;
        Exact = exact;
    }

    /// <summary>Whether this context keeps an F32 KV cache without flash attention.</summary>
    public bool Exact { get; }

    /// <summary>The vocabulary (logits per row).</summary>
    public int VocabularySize => _context.NativeHandle.ModelHandle.Vocab.Count;

    /// <summary>Silences llama.cpp's log (must run before the first native call).</summary>
    public static void Quiet()
    {
        if (s_quiet) return;
        NativeLibraryConfig.All.WithLogCallback((level, message) => { if (level == LLamaLogLevel.Error) Console.Error.Write(message); });
        NativeApi.llama_empty_call(); // loads the native library (the quantizer's entry points do not trigger LLamaSharp's loader)
        s_quiet = true;
    }

    /// <summary>Loads <paramref name="gguf"/> (memory-mapped, as llama.cpp does by default) with a context of <paramref name="contextSize"/> cells.</summary>
    public static LlamaSharpEngine Load(string gguf, int threads, int contextSize, bool exact = false, int sequences = 1)
    {
        Quiet();
        var parameters = Parameters(gguf, threads, contextSize, exact, sequences);
        var weights = LLamaWeights.LoadFromFile(parameters);
        return new LlamaSharpEngine(gguf, weights, weights.CreateContext(parameters), exact);
    }

    /// <summary>A second context on the same weights.</summary>
    public LlamaSharpEngine WithContext(int threads, int contextSize, bool exact, int sequences = 1) =>
        new(_path, _weights, _weights.CreateContext(Parameters(_path, threads, contextSize, exact, sequences)), exact) { _ownsWeights = false };

    private bool _ownsWeights = true;

    private static ModelParams Parameters(string gguf, int threads, int contextSize, bool exact, int sequences)
    {
        var parameters = new ModelParams(gguf)
        {
            ContextSize = (uint)contextSize,
            BatchSize = (uint)contextSize,
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
            SeqMax = (uint)sequences,
        };
        if (exact)
        {
            parameters.TypeK = GGMLType.GGML_TYPE_F32;
            parameters.TypeV = GGMLType.GGML_TYPE_F32;
            parameters.FlashAttention = false;
        }

        return parameters;
    }

    /// <summary>Clears the cache, runs the prompt and returns the argmax of its last position's logits.</summary>
    public int Prefill(int[] prompt, float[]? logits = null)
    {
        _context.NativeHandle.MemoryClear(true);
        _batch.Clear();
        for (var i = 0; i < prompt.Length; i++) _batch.Add((LLamaToken)prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        Decode();
        var row = _context.NativeHandle.GetLogitsIth(_batch.TokenCount - 1);
        if (logits is not null) row.CopyTo(logits);
        return Benchmarks.ArgMax(row);
    }

    /// <summary>Appends one token at <paramref name="position"/> and returns the argmax of the next logits.</summary>
    public int Step(int token, int position)
    {
        _batch.Clear();
        _batch.Add((LLamaToken)token, position, LLamaSeqId.Zero, true);
        Decode();
        return Benchmarks.ArgMax(_context.NativeHandle.GetLogitsIth(0));
    }

    /// <summary>
    /// Greedy decoding of <paramref name="count"/> tokens after the prompt; returns the tokens, the prefill seconds (to the
    /// first token) and the seconds of the decode steps after it.
    /// </summary>
    public (int[] Tokens, double PrefillSeconds, double DecodeSeconds) Greedy(int[] prompt, int count)
    {
        var tokens = new int[count];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        tokens[0] = Prefill(prompt);
        var prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        for (var i = 1; i < count; i++) tokens[i] = Step(tokens[i - 1], prompt.Length + i - 1);
        return (tokens, prefill, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// <paramref name="prompts"/> decoded greedily together, one sequence id each, every step one batch with a row per
    /// sequence (llama.cpp's own batched decoding, as its batched example and server do).
    /// </summary>
    public int[][] GreedyBatched(int[][] prompts, int count)
    {
        _context.NativeHandle.MemoryClear(true);
        var tokens = prompts.Select(_ => new int[count]).ToArray();
        _batch.Clear();
        var rows = new int[prompts.Length];
        for (var s = 0; s < prompts.Length; s++)
        {
            for (var i = 0; i < prompts[s].Length; i++) _batch.Add((LLamaToken)prompts[s][i], i, (LLamaSeqId)s, i == prompts[s].Length - 1);
            rows[s] = _batch.TokenCount - 1;
        }

        Decode();
        for (var s = 0; s < prompts.Length; s++) tokens[s][0] = Benchmarks.ArgMax(_context.NativeHandle.GetLogitsIth(rows[s]));
        for (var step = 1; step < count; step++)
        {
            _batch.Clear();
            for (var s = 0; s < prompts.Length; s++) _batch.Add((LLamaToken)tokens[s][step - 1], prompts[s].Length + step - 1, (LLamaSeqId)s, true);
            Decode();
            for (var s = 0; s < prompts.Length; s++) tokens[s][step] = Benchmarks.ArgMax(_context.NativeHandle.GetLogitsIth(s));
        }

        return tokens;
    }

    private void Decode()
    {
        var result = _context.NativeHandle.Decode(_batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {result} for a batch of {_batch.TokenCount} tokens.");
    }


    public void Dispose()
    {
        _context.Dispose();
        if (_ownsWeights) _weights.Dispose();
    }
}
