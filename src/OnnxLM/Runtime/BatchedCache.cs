using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// The key/value cache of several sequences decoded together, one row each, and the model runs over it. Rows have
/// different lengths, so the cache is aligned on the right: row b's tokens fill the last <c>length[b]</c> columns of the
/// cache width and the columns before them are padding (zeros, masked out by the attention mask). Each step feeds one
/// token per row with its real position id, so RoPE/learned positions and the causal mask see what a run alone sees;
/// masked keys get the graph's large negative bias, their softmax weight is exactly 0, and a row's logits equal its
/// alone-run's up to the summation order of the batched matmuls. Rows join (prefilled alone, then copied in) and leave
/// (the cache is compacted and trimmed to the longest remaining row) between steps. Present outputs become the next
/// past as they are; the cache is copied only when rows join or leave. Not thread-safe: one decode loop owns it.
/// </summary>
internal sealed class BatchedCache : IDisposable
{
    private readonly LanguageModel _model;
    private readonly DecoderGraph _graph;
    private readonly GraphSignature _sig;
    private readonly int _vocab;
    private readonly int _elementSize;
    private readonly List<int> _lengths = [];
    private OrtValue[] _past = [];
    private float[] _logits = [];
    private int _width;

    public BatchedCache(LanguageModel model)
    {
        _model = model;
        _graph = model.Graph;
        _sig = _graph.Signature;
        _vocab = model.Info.VocabularySize;
        _elementSize = _sig.KvType == TensorElementType.Float ? 4 : 2;
    }

    /// <summary>Stops a run in flight when set (disposal of the model).</summary>
    public RunOptions RunOptions { get; } = new();

    /// <summary>Rows (sequences) in the batch.</summary>
    public int Count => _lengths.Count;

    /// <summary>The cache width: the longest row's length.</summary>
    public int Width => _width;

    /// <summary>Tokens held by row <paramref name="row"/>.</summary>
    public int Length(int row) => _lengths[row];

    /// <summary>The raw float32 logits of the position after row <paramref name="row"/>'s last token.</summary>
    public ReadOnlySpan<float> Logits(int row) => _logits.AsSpan(row * _vocab, _vocab);

    /// <summary>
    /// Whether a graph can decode rows of different lengths in one run: a dynamic batch dimension, an attention mask
    /// that masks cache columns, explicit position ids (graphs that derive positions from the past length would shift a
    /// left-padded row) and an attention that reads the mask as a key padding mask (ordinary ops, or the contrib Attention
    /// and MultiHeadAttention ops). Fused GroupQueryAttention takes its per-row lengths from the mask and writes new keys
    /// after them, which needs padding on the right instead, and packed/paged attention take other inputs, so such graphs
    /// decode each sequence alone.
    /// </summary>
    public static bool IsSupported(DecoderGraph graph, string graphPath)
    {
        if (!PaddedBatch.IsSupported(graph) || graph.Signature.PositionIds is null)
        {
            return false;
        }

        try
        {
            var nodes = Explain.OnnxModelFile.Read(graphPath).Nodes;
            return !nodes.Any(n => n.OpType is "GroupQueryAttention" or "PackedAttention" or "PackedMultiHeadAttention" or "PagedAttention");
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

        var ids = new long[batch * n];
        var mask = new long[batch * n];
        var positions = new long[batch * n];
        for (var p = 0; p < batch; p++)
        {
            for (var t = 0; t < n; t++)
            {
                var real = t < prompts[p].Length;
                ids[p * n + t] = real ? prompts[p][t] : 0;
                mask[p * n + t] = real ? 1 : 0;
                positions[p * n + t] = t;
            }
        }

        long[] empty = _sig.Layout == KvCacheLayout.Combined ? [2, batch, _sig.KeyValueHeadCount, 0, _sig.HeadSize] : [batch, _sig.KeyValueHeadCount, 0, _sig.HeadSize];
        var past = new OrtValue[_sig.PastNames.Length];
        for (var i = 0; i < past.Length; i++) past[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, _sig.KvType, empty);
        using var outputs = Run(ids, mask, positions, batch, n, past, hasPast: false, cancellationToken);

        var rows = Count;
        var added = 0;
        foreach (var c in copies) added += c;
        var width = Math.Max(_width, n);
        var next = AllocatePast(rows + added, width);
        try
        {
            for (var i = 0; i < next.Length; i++)
            {
                for (var b = 0; b < rows; b++) CopyRow(_past[i], rows, _width, b, 0, next[i], rows + added, width, b, width - _width, _width);
                var row = rows;
                for (var p = 0; p < batch; p++)
                {
                    var length = prompts[p].Length;
                    for (var c = 0; c < copies[p]; c++) CopyRow(outputs[i + 1], batch, n, p, 0, next[i], rows + added, width, row++, width - length, length);
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
                GraphRun.CopyAsFloat(outputs[0], _sig.LogitsType, (p * n + prompts[p].Length - 1) * _vocab, _vocab, logits.AsSpan(at++ * _vocab, _vocab));
            }
        }

        ReplacePast(next);
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
        var next = rows.Count == 0 ? [] : AllocatePast(rows.Count, width);
        try
        {
            for (var i = 0; i < next.Length; i++)
            {
                for (var r = 0; r < rows.Count; r++) CopyRow(_past[i], Count, _width, rows[r], _width - width, next[i], rows.Count, width, r, 0, width);
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

        ReplacePast(next);
        _logits = logits;
        _width = width;
        _lengths.Clear();
        _lengths.AddRange(lengths);
    }

    /// <summary>
    /// Makes an empty batch hold one row: the sequence and cache of <paramref name="session"/> (a CPU session), copied as
    /// they are, with the session's next-token logits. The scheduler decodes a lone request in a session and moves it here
    /// when a second one joins.
    /// </summary>
    public void AddFromSession(GenerationSession session)
    {
        if (Count != 0) throw new InvalidOperationException("Only an empty batch takes a session's cache.");
        var cache = session.HostCache ?? throw new InvalidOperationException("The session's cache is not in host memory.");
        var length = session.Length;
        var past = AllocatePast(1, length);
        try
        {
            for (var i = 0; i < past.Length; i++) cache.Live(i, length).CopyTo(past[i].GetTensorMutableDataAsSpan<byte>());
        }
        catch
        {
            foreach (var value in past) value.Dispose();
            throw;
        }

        ReplacePast(past);
        _width = length;
        _lengths.Add(length);
        _logits = session.NextTokenLogits.ToArray();
    }

    /// <summary>Runs one step: appends <paramref name="tokenIds"/>[b] to row b (all rows) and reads each row's next-token logits.</summary>
    public void Step(ReadOnlySpan<int> tokenIds, CancellationToken cancellationToken)
    {
        var batch = Count;
        if (tokenIds.Length != batch)
        {
            throw new ArgumentException($"Expected one token per row ({batch}), got {tokenIds.Length}.", nameof(tokenIds));
        }

        GraphRun.CheckTokenIds(tokenIds, _vocab, nameof(tokenIds));
        var total = _width + 1;
        var ids = new long[batch];
        var positions = new long[batch];
        var mask = new long[batch * total];
        for (var b = 0; b < batch; b++)
        {
            ids[b] = tokenIds[b];
            positions[b] = _lengths[b];
            mask.AsSpan(b * total + _width - _lengths[b], _lengths[b] + 1).Fill(1);
        }

        var outputs = Run(ids, mask, positions, batch, 1, _past, hasPast: true, cancellationToken);
        try
        {
            for (var b = 0; b < batch; b++)
            {
                GraphRun.CopyAsFloat(outputs[0], _sig.LogitsType, b * _vocab, _vocab, _logits.AsSpan(b * _vocab, _vocab));
            }
        }
        catch
        {
            outputs.Dispose();
            throw;
        }

        var present = new OrtValue[_past.Length];
        for (var i = 0; i < present.Length; i++) present[i] = outputs[i + 1];
        outputs[0].Dispose();
        ReplacePast(present); // the presents now belong to the cache; the collection is not disposed
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

        var total = _width + n;
        var ids = new long[batch * n];
        var positions = new long[batch * n];
        var mask = new long[batch * total];
        for (var b = 0; b < batch; b++)
        {
            var length = tokens[b].Length;
            mask.AsSpan(b * total + _width - _lengths[b], _lengths[b] + length).Fill(1);
            for (var t = 0; t < n; t++)
            {
                ids[b * n + t] = t < length ? tokens[b][t] : 0;
                // Padding after the row's tokens is never attended to (causal); any valid position will do.
                positions[b * n + t] = _lengths[b] + Math.Min(t, Math.Max(length - 1, 0));
            }
        }

        using var outputs = Run(ids, mask, positions, batch, n, _past, hasPast: true, cancellationToken);
        for (var b = 0; b < batch; b++)
        {
            GraphRun.CopyAsFloat(outputs[0], _sig.LogitsType, b * n * _vocab, tokens[b].Length * _vocab, logits[b].Span);
        }
    }

    /// <summary>Frees the cache's native memory and the run options.</summary>
    public void Dispose()
    {
        ReplacePast([]);
        _lengths.Clear();
        _width = 0;
        RunOptions.Dispose();
    }

    private IDisposableReadOnlyCollection<OrtValue> Run(long[] ids, long[] mask, long[] positions, int batch, int n, OrtValue[] past, bool hasPast, CancellationToken cancellationToken)
    {
        var names = new List<string>(4 + past.Length);
        var values = new List<OrtValue>(4 + past.Length);
        var owned = new List<OrtValue>(4);
        try
        {
            Add(_sig.InputIds, GraphRun.CreateIntTensor(_sig.IdType, ids, [batch, n]), own: true);
            Add(_sig.AttentionMask!, GraphRun.CreateIntTensor(_sig.MaskType, mask, [batch, mask.Length / batch]), own: true);
            Add(_sig.PositionIds!, GraphRun.CreateIntTensor(_sig.PositionType, positions, [batch, n]), own: true);
            if (_sig.UseCacheBranch is { } branch)
            {
                Add(branch, OrtValue.CreateTensorValueFromMemory(new[] { hasPast }, [1]), own: true);
            }

            for (var i = 0; i < past.Length; i++) Add(_sig.PastNames[i], past[i], own: !hasPast);
            var outputNames = new string[1 + _sig.PresentNames.Length];
            outputNames[0] = _sig.Logits;
            _sig.PresentNames.CopyTo(outputNames, 1);
            try
            {
                // Outputs are allocated by ONNX Runtime on the host (also on CUDA), so rows can be copied between steps.
                var outputs = GraphRun.Cancellable(RunOptions, cancellationToken, () => _graph.Session.Run(RunOptions, names, values, outputNames));
                try
                {
                    CheckLogits(outputs[0], batch, n);
                }
                catch
                {
                    outputs.Dispose();
                    throw;
                }

                return outputs;
            }
            catch (OnnxRuntimeException e)
            {
                throw new ModelRunException(
                    $"ONNX Runtime failed running '{_model.Info.GraphPath}' on a batch of {batch} row(s) of {n} new token(s) after a cache of width {(hasPast ? _width : 0)}: {e.Message}",
                    _model.Info.GraphPath, e);
            }
        }
        finally
        {
            foreach (var value in owned) value.Dispose();
        }

        void Add(string name, OrtValue value, bool own)
        {
            names.Add(name);
            values.Add(value);
            if (own) owned.Add(value);
        }
    }

    private void CheckLogits(OrtValue logits, int batch, int n)
    {
        var shape = logits.GetTensorTypeAndShape().Shape;
        if (shape is not [_, _, _] || shape[0] != batch || shape[1] != n || shape[2] != _vocab)
        {
            throw new ModelFormatException(
                $"The graph returned logits of shape [{string.Join(", ", shape)}]; expected [{batch}, {n}, {_vocab}].", _model.Info.GraphPath);
        }
    }

    private OrtValue[] AllocatePast(int batch, int width)
    {
        long[] shape = _sig.Layout == KvCacheLayout.Combined
            ? [2, batch, _sig.KeyValueHeadCount, width, _sig.HeadSize]
            : [batch, _sig.KeyValueHeadCount, width, _sig.HeadSize];
        var past = new OrtValue[_sig.PastNames.Length];
        for (var i = 0; i < past.Length; i++)
        {
            past[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, _sig.KvType, shape);
            past[i].GetTensorMutableDataAsSpan<byte>().Clear(); // padding columns must be finite: they are masked, not skipped
        }

        return past;
    }

    /// <summary>
    /// Copies <paramref name="count"/> cache columns of row <paramref name="srcRow"/> from column <paramref name="srcColumn"/> of
    /// <paramref name="source"/> ([outer][batch][kv_heads][width][head], outer 2 for the combined layout) to row <paramref name="dstRow"/>
    /// from column <paramref name="dstColumn"/> of <paramref name="destination"/>.
    /// </summary>
    private void CopyRow(OrtValue source, int srcBatch, int srcWidth, int srcRow, int srcColumn,
        OrtValue destination, int dstBatch, int dstWidth, int dstRow, int dstColumn, int count)
    {
        if (count == 0)
        {
            return;
        }

        var row = _sig.HeadSize * _elementSize;
        var heads = _sig.KeyValueHeadCount;
        var outer = _sig.Layout == KvCacheLayout.Combined ? 2 : 1;
        var from = source.GetTensorDataAsSpan<byte>();
        var to = destination.GetTensorMutableDataAsSpan<byte>();
        for (var o = 0; o < outer; o++)
        {
            for (var h = 0; h < heads; h++)
            {
                var s = (((long)o * srcBatch + srcRow) * heads + h) * srcWidth + srcColumn;
                var d = (((long)o * dstBatch + dstRow) * heads + h) * dstWidth + dstColumn;
                from.Slice((int)(s * row), count * row).CopyTo(to.Slice((int)(d * row), count * row));
            }
        }
    }

    private void ReplacePast(OrtValue[] next)
    {
        var old = _past;
        _past = next;
        foreach (var value in old) value.Dispose();
    }
}
