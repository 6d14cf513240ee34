using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// The key/value cache of several sequences decoded together, one row each, and the model runs over it. Rows have
/// different lengths, so the cache is padded to the longest: for graphs whose attention reads the mask as a key padding
/// mask, row b's tokens fill the last <c>length[b]</c> columns of the cache width (aligned on the right) and the columns
/// before them are padding (zeros, masked out by the attention mask); for GroupQueryAttention graphs, which read each row's
/// length from its count of ones in the mask and keep its keys from column 0 (ONNX Runtime's per-row <c>seqlens_k</c>), row
/// b's tokens fill its first <c>length[b]</c> columns and the operator writes each new key after them. Each step feeds one
/// token per row with its real position id, so RoPE/learned positions and the causal mask see what a run alone sees;
/// masked keys get the graph's large negative bias (or are never read), and a row's logits equal its alone-run's up to
/// the summation order of the batched matmuls. Rows join (prefilled, then copied in) and leave
/// (the cache is compacted and trimmed to the longest remaining row) between steps. The cache lives in native buffers the
/// batch owns. Where a session would share one buffer as past and present (GroupQueryAttention on the CPU), so does the
/// batch: one buffer per cache tensor, each row <see cref="Stride"/> columns wide with room to grow, bound as both, and the
/// operator writes each row's new key after its own length in place. Otherwise there are two per cache tensor: a step reads
/// the past from one and ONNX Runtime writes the present into the other (then they swap). Every input and the logits are
/// views of reused buffers bound through <see cref="OrtNative"/>, so a steady step allocates no managed memory; the cache is
/// copied only when rows join or leave (and, when shared, when a row outgrows its room). Not thread-safe: one decode loop
/// owns it.
/// </summary>
internal sealed unsafe class BatchedCache : IDisposable
{
    private readonly ModelRuntime _model;
    private readonly DecoderGraph _graph;
    private readonly GraphSignature _sig;
    private readonly int _vocab;
    private readonly bool _fromStart;    // rows start at column 0 (GroupQueryAttention), else they end at the last column
    private readonly bool _shared;       // one buffer is bound as past and present (GroupQueryAttention appends in place)
    private readonly int _maxStride;     // the model's context: a shared row never needs more columns
    private readonly List<int> _lengths = [];
    private NativeBuffer[] _past = [];   // per cache tensor: [outer][Count][kv_heads][_stride][head], contiguous
    private NativeBuffer?[] _spare = []; // where a step's presents are written; swapped with _past after it (not shared)
    private readonly GraphFeed _feed;    // a run's ids, positions, use_cache flag and mask
    private NativeBuffer? _stepLogits;   // a step's logits [Count, 1, vocab]
    private OrtIoBinding? _binding;
    private float[] _logits = [];
    private int _width;
    private int _stride;                 // columns per row in _past: _width, or more when shared (room to append)

    public BatchedCache(ModelRuntime model)
    {
        _model = model;
        _graph = model.Graph;
        _sig = _graph.Signature;
        _vocab = model.Info.VocabularySize;
        _fromStart = _graph.AttentionReadsLengths;
        _shared = _fromStart && _graph.SharesCacheBuffer;
        _maxStride = Math.Max(1, model.Info.ContextLength);
        _feed = new GraphFeed(_graph);
    }

    /// <summary>Stops a run in flight when set (disposal of the model).</summary>
    public RunOptions RunOptions { get; } = new();

    /// <summary>Rows (sequences) in the batch.</summary>
    public int Count => _lengths.Count;

    /// <summary>The cache width: the longest row's length.</summary>
    public int Width => _width;

    /// <summary>
    /// Columns each row takes in the cache buffers: the width, or, when past and present share one buffer, the width plus
    /// room for the rows to grow into before the buffer is copied to a wider one.
    /// </summary>
    public int Stride => _stride;

    /// <summary>Whether each cache tensor is one buffer bound as both past and present.</summary>
    public bool SharesBuffer => _shared;

    /// <summary>Tokens held by row <paramref name="row"/>.</summary>
    public int Length(int row) => _lengths[row];

    /// <summary>The raw float32 logits of the position after row <paramref name="row"/>'s last token.</summary>
    public ReadOnlySpan<float> Logits(int row) => _logits.AsSpan(row * _vocab, _vocab);

    /// <summary>
    /// Whether a graph can decode rows of different lengths in one run: a dynamic batch dimension, an attention mask,
    /// explicit position ids (graphs that derive positions from the past length would shift a padded row) and an attention
    /// that reads the mask as a key padding mask (ordinary ops, or the contrib Attention and MultiHeadAttention ops) or as
    /// per-row lengths (GroupQueryAttention). Packed and paged attention take other inputs, so such graphs decode each
    /// sequence alone.
    /// </summary>
    public static bool IsSupported(DecoderGraph graph, string graphPath)
    {
        if (!PaddedBatch.IsSupported(graph) || graph.Signature.PositionIds is null)
        {
            return false;
        }

        try
        {
            var nodes = OnnxModelFile.Read(graphPath).Nodes;
            return !nodes.Any(n => n.OpType is "PackedAttention" or "PackedMultiHeadAttention" or "PagedAttention");
        }
        catch (Exception e) when (e is ModelFormatException or IOException)
        {
            return false; // the graph could not be inspected: decoding alone is always correct
        }
    }

    /// <summary>
    /// Prefills <paramref name="prompt"/> alone (batch 1, as a session would) and adds it as <paramref name="copies"/> new rows
    /// at the end of the batch, each holding the same cache and next-token logits (n samples of one prompt).
    /// </summary>
    public void Add(int[] prompt, int copies, CancellationToken cancellationToken) => Add([prompt], [copies], cancellationToken);

    /// <summary>
    /// Prefills <paramref name="prompts"/> in one run, padded on the right (causal attention: no real position sees the padding
    /// after it), and adds prompt p as <paramref name="copies"/>[p] new rows at the end of the batch, in order. Only each
    /// prompt's real positions are copied into the right-aligned cache; the padding's keys and values are dropped.
    /// </summary>
    public void Add(IReadOnlyList<int[]> prompts, IReadOnlyList<int> copies, CancellationToken cancellationToken)
    {
        var batch = prompts.Count;
        var n = 0;
        foreach (var prompt in prompts)
        {
            GraphRun.CheckTokenIds(prompt, _vocab, nameof(prompts));
            n = Math.Max(n, prompt.Length);
        }

        _feed.Begin(batch, n, 0);
        for (var p = 0; p < batch; p++) _feed.Row(p, prompts[p], 0);
        var logitRows = _feed.KeepLastLogits(1); // one prompt: only its last position's logits are read
        using var outputs = Run(n, past: null, cancellationToken, logitRows);

        var rows = Count;
        var added = 0;
        foreach (var c in copies) added += c;
        var width = Math.Max(_width, n);
        var stride = StrideFor(width);
        var next = AllocatePast(rows + added, stride);
        try
        {
            for (var i = 0; i < next.Length; i++)
            {
                var target = next[i].AsSpan(0, TensorBytes(rows + added, stride));
                for (var b = 0; b < rows; b++) _sig.CopyCachePositions(Live(i), rows, _stride, b, 0, target, rows + added, stride, b, Start(_width, width), _width);
                var row = rows;
                for (var p = 0; p < batch; p++)
                {
                    var length = prompts[p].Length;
                    for (var c = 0; c < copies[p]; c++) _sig.CopyCachePositions(outputs[i + 1].GetTensorDataAsSpan<byte>(), batch, n, p, 0, target, rows + added, stride, row++, Start(length, width), length);
                }
            }
        }
        catch
        {
            foreach (var value in next) value.Dispose();
            throw;
        }

        var logits = new float[(rows + added) * _vocab];
        _logits.AsSpan(0, rows * _vocab).CopyTo(logits);
        var at = rows;
        for (var p = 0; p < batch; p++)
        {
            for (var c = 0; c < copies[p]; c++)
            {
                GraphRun.CopyAsFloat(outputs[0], _sig.LogitsType, (p * logitRows + prompts[p].Length - 1 - (n - logitRows)) * _vocab, _vocab, logits.AsSpan(at++ * _vocab, _vocab));
            }
        }

        ReplacePast(next, stride);
        _logits = logits;
        _width = width;
        for (var p = 0; p < batch; p++)
        {
            for (var c = 0; c < copies[p]; c++) _lengths.Add(prompts[p].Length);
        }
    }

    /// <summary>Removes the rows whose <paramref name="remove"/> flag is set, keeping the others in order, and trims the padding no row needs.</summary>
    public void Remove(IReadOnlyList<bool> remove)
    {
        var kept = new List<int>(Count);
        for (var b = 0; b < Count; b++)
        {
            if (!remove[b]) kept.Add(b);
        }

        if (kept.Count < Count)
        {
            Select(kept);
        }
    }

    /// <summary>
    /// Makes row i a copy of the current row <paramref name="rows"/>[i] (rows may repeat or be left out: beams continuing from
    /// their parents) and trims the padding no row needs.
    /// </summary>
    public void Select(IReadOnlyList<int> rows)
    {
        var width = 0;
        foreach (var b in rows) width = Math.Max(width, _lengths[b]);
        var stride = rows.Count == 0 ? 0 : StrideFor(width);
        var next = rows.Count == 0 ? [] : AllocatePast(rows.Count, stride);
        try
        {
            for (var i = 0; i < next.Length; i++)
            {
                for (var r = 0; r < rows.Count; r++) _sig.CopyCachePositions(Live(i), Count, _stride, rows[r], Start(width, _width), next[i].AsSpan(0, TensorBytes(rows.Count, stride)), rows.Count, stride, r, 0, width);
            }
        }
        catch
        {
            foreach (var value in next) value.Dispose();
            throw;
        }

        var logits = new float[rows.Count * _vocab];
        var lengths = new int[rows.Count];
        for (var r = 0; r < rows.Count; r++)
        {
            Logits(rows[r]).CopyTo(logits.AsSpan(r * _vocab, _vocab));
            lengths[r] = _lengths[rows[r]];
        }

        ReplacePast(next, stride);
        _logits = logits;
        _width = width;
        _lengths.Clear();
        _lengths.AddRange(lengths);
    }

    /// <summary>
    /// Adds the sequence and cache of <paramref name="session"/> (a CPU session), copied as they are, as <paramref name="copies"/>
    /// new rows at the end of the batch, each with the session's next-token logits. The scheduler decodes a lone request in a
    /// session and moves it here when a second one joins, and prefills a long prompt in a session, chunk by chunk between the
    /// batch's steps, before it joins.
    /// </summary>
    public void AddFromSession(GenerationSession session, int copies = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(copies, 1);
        var cache = session.HostCache ?? throw new InvalidOperationException("The session's cache is not in host memory.");
        var length = session.Length;
        var rows = Count;
        var width = Math.Max(_width, length);
        var stride = StrideFor(width);
        var next = AllocatePast(rows + copies, stride);
        try
        {
            using var one = new NativeBuffer(Math.Max(1, TensorBytes(1, length)), zeroed: false);
            var source = one.AsSpan(0, TensorBytes(1, length));
            for (var i = 0; i < next.Length; i++)
            {
                var target = next[i].AsSpan(0, TensorBytes(rows + copies, stride));
                for (var b = 0; b < rows; b++) _sig.CopyCachePositions(Live(i), rows, _stride, b, 0, target, rows + copies, stride, b, Start(_width, width), _width);
                cache.CopyLive(i, length, source);
                for (var c = 0; c < copies; c++) _sig.CopyCachePositions(source, 1, length, 0, 0, target, rows + copies, stride, rows + c, Start(length, width), length);
            }
        }
        catch
        {
            foreach (var value in next) value.Dispose();
            throw;
        }

        var logits = new float[(rows + copies) * _vocab];
        _logits.AsSpan(0, rows * _vocab).CopyTo(logits);
        for (var c = 0; c < copies; c++) session.NextTokenLogits.CopyTo(logits.AsSpan((rows + c) * _vocab, _vocab));
        ReplacePast(next, stride);
        _logits = logits;
        _width = width;
        for (var c = 0; c < copies; c++) _lengths.Add(length);
    }

    /// <summary>
    /// Runs one step: appends <paramref name="tokenIds"/>[b] to row b (all rows) and reads each row's next-token logits. Every
    /// tensor is a view of a buffer the batch keeps, so once they have grown a step allocates nothing.
    /// </summary>
    public void Step(ReadOnlySpan<int> tokenIds, CancellationToken cancellationToken)
    {
        var batch = Count;
        if (tokenIds.Length != batch)
        {
            throw new ArgumentException($"Expected one token per row ({batch}), got {tokenIds.Length}.", nameof(tokenIds));
        }

        GraphRun.CheckTokenIds(tokenIds, _vocab, nameof(tokenIds));
        var total = _width + 1;
        var logitSize = _sig.LogitsType == TensorElementType.Float ? 4 : 2;
        var logitsBytes = (long)batch * _vocab * logitSize;
        Ensure(ref _stepLogits, logitsBytes);
        if (_shared)
        {
            Widen(total);
        }
        else
        {
            if (_spare.Length != _past.Length)
            {
                foreach (var buffer in _spare) buffer?.Dispose();
                _spare = new NativeBuffer?[_past.Length];
            }

            for (var i = 0; i < _spare.Length; i++) Ensure(ref _spare[i], TensorBytes(batch, total));
        }

        _feed.Begin(batch, 1, _width);
        for (var b = 0; b < batch; b++) _feed.Row(b, tokenIds.Slice(b, 1), _lengths[b]);
        _binding ??= _graph.Session.CreateIoBinding();
        var cpu = OrtMemoryInfo.DefaultInstance;
        Span<long> shape = stackalloc long[5];
        try
        {
            _feed.Bind(_binding);
            var rank = _sig.CacheShape(shape, batch, _stride);
            for (var i = 0; i < _past.Length; i++)
            {
                OrtNative.BindInputView(_binding, _graph.PastNames[i], cpu, _past[i].Pointer, TensorBytes(batch, _stride), shape[..rank], _sig.KvType);
            }

            // Shared: the present is the same buffer, as wide as the past; the operator writes row b's key at its length.
            var present = _shared ? _stride : total;
            _sig.CacheShape(shape, batch, present);
            for (var i = 0; i < _past.Length; i++)
            {
                var buffer = _shared ? _past[i] : _spare[i]!;
                OrtNative.BindOutputView(_binding, _graph.PresentNames[i], cpu, buffer.Pointer, TensorBytes(batch, present), shape[..rank], _sig.KvType);
            }

            shape[0] = batch;
            shape[1] = 1;
            shape[2] = _vocab;
            OrtNative.BindOutputView(_binding, _graph.LogitsName, cpu, _stepLogits!.Pointer, logitsBytes, shape[..3], _sig.LogitsType);

            try
            {
                GraphRun.RunBound(_graph.Session, RunOptions, _binding, cancellationToken);
            }
            catch (OnnxRuntimeException e)
            {
                throw new ModelRunException(
                    $"ONNX Runtime failed running '{_model.Info.GraphPath}' on a batch of {batch} row(s) of 1 new token after a cache of width {_width}: {e.Message}",
                    _model.Info.GraphPath, e);
            }
        }
        finally
        {
            _binding.ClearBoundInputs();
            _binding.ClearBoundOutputs();
        }

        if (!_shared)
        {
            for (var i = 0; i < _past.Length; i++) (_past[i], _spare[i]) = (_spare[i]!, _past[i]);
            _stride = total;
        }

        if (_logits.Length != batch * _vocab) _logits = new float[batch * _vocab];
        if (_sig.LogitsType == TensorElementType.Float)
        {
            new ReadOnlySpan<float>(_stepLogits.Pointer, batch * _vocab).CopyTo(_logits);
        }
        else
        {
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(_stepLogits.Pointer, batch * _vocab), _logits);
        }

        _width = total;
        for (var b = 0; b < batch; b++) _lengths[b]++;
    }

    /// <summary>
    /// Runs <paramref name="tokens"/>[b] after row b's cache (right-padded to the longest; a row may have none) and copies the
    /// logits of each of its positions into <paramref name="logits"/>[b] (row-major, [tokens[b].Length, vocab]). The cache itself
    /// is left as it was: this scores continuations that share the rows' prefixes (batched scoring).
    /// </summary>
    public void Score(IReadOnlyList<int[]> tokens, IReadOnlyList<Memory<float>> logits, CancellationToken cancellationToken)
    {
        var batch = Count;
        var n = 0;
        foreach (var row in tokens)
        {
            GraphRun.CheckTokenIds(row, _vocab, nameof(tokens));
            n = Math.Max(n, row.Length);
        }

        if (n == 0)
        {
            return;
        }

        _feed.Begin(batch, n, _width);
        for (var b = 0; b < batch; b++)
        {
            // GroupQueryAttention places a row's new tokens after its past by its count of ones (past = ones − n), so
            // every row runs n tokens: a shorter one repeats its last token (or id 0), whose logits are not read.
            var row = tokens[b];
            if (_fromStart && row.Length < n)
            {
                var padded = new int[n];
                row.CopyTo(padded, 0);
                padded.AsSpan(row.Length).Fill(row.Length > 0 ? row[^1] : 0);
                row = padded;
            }

            _feed.Row(b, row, _lengths[b]);
        }

        var past = PastViews();
        try
        {
            using var outputs = Run(n, past, cancellationToken);
            for (var b = 0; b < batch; b++)
            {
                GraphRun.CopyAsFloat(outputs[0], _sig.LogitsType, b * n * _vocab, tokens[b].Length * _vocab, logits[b].Span);
            }
        }
        finally
        {
            foreach (var view in past) view.Dispose();
        }
    }

    /// <summary>Frees the cache's native memory and the run options.</summary>
    public void Dispose()
    {
        ReplacePast([], 0);
        foreach (var buffer in _spare) buffer?.Dispose();
        _spare = [];
        _feed.Dispose();
        _stepLogits?.Dispose();
        _binding?.Dispose();
        _lengths.Clear();
        _width = 0;
        RunOptions.Dispose();
    }

    /// <summary>
    /// Runs what the feed holds (<paramref name="n"/> new tokens per row) after <paramref name="past"/>, or after an empty past
    /// when it is null, through the managed API: the outputs (logits, then presents) come back allocated on the host, also on
    /// CUDA, so rows can be copied between steps. The logits have <paramref name="logitRows"/> positions per row when the feed
    /// asked for fewer than n (<see cref="GraphFeed.KeepLastLogits"/>), n when it is negative.
    /// </summary>
    private IDisposableReadOnlyCollection<OrtValue> Run(int n, OrtValue[]? past, CancellationToken cancellationToken, int logitRows = -1)
    {
        var batch = _feed.Rows;
        var outputNames = new string[1 + _sig.PresentNames.Length];
        outputNames[0] = _sig.Logits;
        _sig.PresentNames.CopyTo(outputNames, 1);
        IDisposableReadOnlyCollection<OrtValue> outputs;
        try
        {
            outputs = _feed.Run(_graph.Session, RunOptions, past, outputNames, cancellationToken);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelRunException(
                $"ONNX Runtime failed running '{_model.Info.GraphPath}' on a batch of {batch} row(s) of {n} new token(s) after a cache of width {(past is null ? 0 : _width)}: {e.Message}",
                _model.Info.GraphPath, e);
        }

        try
        {
            GraphRun.CheckLogits(outputs[0], batch, logitRows < 0 ? n : logitRows, _vocab, _model.Info.GraphPath);
            return outputs;
        }
        catch
        {
            outputs.Dispose();
            throw;
        }
    }

    /// <summary>Zeroed cache buffers for <paramref name="batch"/> rows of <paramref name="columns"/> (padding columns must be finite: they are masked, not skipped).</summary>
    private NativeBuffer[] AllocatePast(int batch, int columns)
    {
        var past = new NativeBuffer[_sig.PastNames.Length];
        for (var i = 0; i < past.Length; i++) past[i] = new NativeBuffer(TensorBytes(batch, columns));
        return past;
    }

    /// <summary>
    /// Columns per row for a cache <paramref name="width"/> wide: the width itself, or, when shared, the next step's column
    /// and a quarter more (at least 32) so the rows grow in place for a while, within the model's context.
    /// </summary>
    private int StrideFor(int width) =>
        _shared ? Math.Max(width + 1, Math.Min(_maxStride, width + Math.Max(32, width / 4))) : width;

    /// <summary>Copies a shared cache into wider rows when a step's <paramref name="total"/> columns no longer fit.</summary>
    private void Widen(int total)
    {
        if (total <= _stride) return;
        var stride = StrideFor(total - 1);
        var next = AllocatePast(Count, stride);
        try
        {
            for (var i = 0; i < next.Length; i++)
            {
                var target = next[i].AsSpan(0, TensorBytes(Count, stride));
                for (var b = 0; b < Count; b++) _sig.CopyCachePositions(Live(i), Count, _stride, b, 0, target, Count, stride, b, 0, _lengths[b]);
            }
        }
        catch
        {
            foreach (var value in next) value.Dispose();
            throw;
        }

        ReplacePast(next, stride);
    }

    /// <summary>The column where <paramref name="length"/> positions start in a row <paramref name="width"/> wide.</summary>
    private int Start(int length, int width) => _fromStart ? 0 : width - length;

    /// <summary>Bytes of one cache tensor of <paramref name="batch"/> rows and <paramref name="width"/> columns.</summary>
    private int TensorBytes(int batch, int width) => checked((int)_sig.CacheBytes(batch, width));

    /// <summary>The live cache tensor <paramref name="i"/>.</summary>
    private Span<byte> Live(int i) => _past[i].AsSpan(0, TensorBytes(Count, _stride));

    /// <summary>Tensors over the live cache for a run through the managed API (scoring), to dispose after it.</summary>
    private OrtValue[] PastViews()
    {
        var shape = _sig.CacheShape(Count, _stride);
        var views = new OrtValue[_past.Length];
        for (var i = 0; i < views.Length; i++)
        {
            views[i] = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, _sig.KvType, shape, (IntPtr)_past[i].Pointer, TensorBytes(Count, _stride));
        }

        return views;
    }

    /// <summary>Makes <paramref name="buffer"/> hold at least <paramref name="bytes"/>, growing by doubling (its contents are not kept).</summary>
    private static void Ensure(ref NativeBuffer? buffer, long bytes)
    {
        if (buffer is not null && buffer.Bytes >= bytes) return;
        var size = Math.Max(bytes, 2 * (buffer?.Bytes ?? 0));
        buffer?.Dispose();
        buffer = null;
        buffer = new NativeBuffer(size, zeroed: false);
    }

    private void ReplacePast(NativeBuffer[] next, int stride)
    {
        var old = _past;
        _past = next;
        _stride = stride;
        foreach (var value in old) value.Dispose();
    }
}
