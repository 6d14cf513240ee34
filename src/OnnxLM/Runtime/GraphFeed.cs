using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// The one owner of what the decoder graph is fed besides its cache: <c>input_ids</c>, <c>position_ids</c>,
/// <c>attention_mask</c>, <c>use_cache_branch</c> and the inputs some exporters add (<c>num_logits_to_keep</c>,
/// <c>cache_position</c>, <c>token_type_ids</c>), for a run of rows × n new tokens after a past of a given width, and
/// the empty past of a run from nothing. Every caller (a session's step or prefill, the batch's step, join and scoring,
/// padded scoring, explain) describes its run the same way: row b holds <c>pastLength</c> real positions right-aligned in
/// the past (the columns before them are padding) and then its new tokens, right-padded to n. From that one description:
/// ids (0 in padding), positions (the row's real ones; padding repeats the last, which no real position attends to), the
/// mask (ones over real columns; the graph's shared mask of ones when no row is padded), the cache flag (a past is
/// given), cache positions (the past width onwards, shared by the rows), token types (zeros) and the logits to keep (0, all
/// rows, unless <see cref="KeepLastLogits"/> asks for fewer). The values live in a native buffer this feed keeps and reuses, bound as views through <see cref="OrtNative"/>
/// (a steady step allocates nothing) or wrapped as tensors for a run through the managed API. A graph input added later
/// is written here, once. Not thread-safe: one owner, one run at a time.
/// </summary>
internal sealed unsafe class GraphFeed : IDisposable
{
    private readonly DecoderGraph _graph;
    private readonly GraphSignature _sig;
    private NativeBuffer? _buffer;     // ids, positions, token types, the flag, the logits to keep and cache positions
    private NativeBuffer? _maskBuffer; // the mask, once a run has a padded row
    private byte* _ids;
    private byte* _positions;
    private byte* _flag;
    private byte* _keep;
    private byte* _cachePositions;
    private byte* _tokenTypes;
    private byte* _mask;
    private int _rows;
    private int _n;
    private int _pastWidth;
    private bool _padded;

    public GraphFeed(DecoderGraph graph)
    {
        _graph = graph;
        _sig = graph.Signature;
    }

    /// <summary>Rows of the run being written.</summary>
    public int Rows => _rows;

    /// <summary>Columns of the mask: the past width plus the new tokens.</summary>
    private int Columns => _pastWidth + _n;

    /// <summary>
    /// Starts a run of <paramref name="rows"/> rows of <paramref name="n"/> new tokens after a past <paramref name="pastWidth"/>
    /// wide; then write every row, in order, with <see cref="Row"/>.
    /// </summary>
    public void Begin(int rows, int n, int pastWidth)
    {
        // Ids, positions and token types as 8-byte slots (int32 uses the first half of each), then the flag's and the logits
        // count's 8 bytes, then the cache positions.
        Ensure(ref _buffer, 24L * rows * n + 16 + 8L * n);
        _rows = rows;
        _n = n;
        _pastWidth = pastWidth;
        _padded = false;
        _ids = _buffer.Pointer;
        _positions = _ids + 8L * rows * n;
        _tokenTypes = _positions + 8L * rows * n;
        _flag = _tokenTypes + 8L * rows * n;
        _keep = _flag + 8;
        _cachePositions = _keep + 8;
        _mask = null;
        *_flag = pastWidth > 0 ? (byte)1 : (byte)0;
        *(long*)_keep = 0; // 0 keeps every row's logits (transformers' convention); an int32 input reads the low half, also 0
        if (_sig.TokenTypeIds is not null) new Span<byte>(_tokenTypes, 8 * rows * n).Clear();
        if (_sig.CachePosition is not null)
        {
            for (var t = 0; t < n; t++) GraphRun.WriteInteger(_cachePositions, _sig.CachePositionType, t, pastWidth + t);
        }
    }

    /// <summary>
    /// Asks a graph that takes <c>num_logits_to_keep</c>/<c>logits_to_keep</c> for the logits of only the last
    /// <paramref name="rows"/> positions of this one-row run (a prefill reads one); call after <see cref="Begin"/>, before
    /// binding. Returns how many rows of logits the run will return: <paramref name="rows"/>, or every new token's when
    /// the graph has no such input.
    /// </summary>
    public int KeepLastLogits(int rows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rows, _n);
        if (_sig.LogitsToKeep is null || _rows != 1) return _n;
        GraphRun.WriteInteger(_keep, _sig.LogitsToKeepType, 0, rows);
        return rows;
    }

    /// <summary>
    /// Writes row <paramref name="row"/>: <paramref name="tokens"/> (at most n; the rest is padding) after
    /// <paramref name="pastLength"/> real past positions (at most the past width).
    /// </summary>
    public void Row(int row, ReadOnlySpan<int> tokens, int pastLength)
    {
        var length = tokens.Length;
        var last = Math.Max(length - 1, 0);
        var at = row * _n;
        for (var t = 0; t < _n; t++)
        {
            GraphRun.WriteInteger(_ids, _sig.IdType, at + t, t < length ? tokens[t] : 0);
            GraphRun.WriteInteger(_positions, _sig.PositionType, at + t, pastLength + Math.Min(t, last));
        }

        if (_sig.AttentionMask is null)
        {
            return;
        }

        var columns = Columns;
        var padded = pastLength != _pastWidth || length != _n;
        if (padded && !_padded)
        {
            // Rows written so far had no padding and wrote no mask (the shared ones stood for them): write theirs now.
            Ensure(ref _maskBuffer, (long)_rows * columns * GraphRun.IntegerSize(_sig.MaskType));
            _mask = _maskBuffer.Pointer;
            FillMask(0, row * columns, 1);
            _padded = true;
        }

        if (_padded)
        {
            var start = row * columns;
            var first = _pastWidth - pastLength;
            FillMask(start, first, 0);
            FillMask(start + first, pastLength + length, 1);
            FillMask(start + first + pastLength + length, _n - length, 0);
        }
    }

    /// <summary>Binds the inputs as views of this feed's buffer (host memory; ONNX Runtime copies them to a device itself).</summary>
    public void Bind(OrtIoBinding binding)
    {
        var cpu = OrtMemoryInfo.DefaultInstance;
        Span<long> shape = stackalloc long[2];
        shape[0] = _rows;
        shape[1] = _n;
        var cells = (long)_rows * _n;
        OrtNative.BindInputView(binding, _graph.InputIdsName, cpu, _ids, cells * GraphRun.IntegerSize(_sig.IdType), shape, _sig.IdType);
        if (_graph.PositionsName is { } positions)
        {
            OrtNative.BindInputView(binding, positions, cpu, _positions, cells * GraphRun.IntegerSize(_sig.PositionType), shape, _sig.PositionType);
        }

        if (_graph.MaskName is { } mask)
        {
            shape[1] = Columns;
            OrtNative.BindInputView(binding, mask, cpu, MaskPointer(), MaskBytes(), shape, _sig.MaskType);
        }

        if (_graph.UseCacheBranchName is { } branch)
        {
            OrtNative.BindInputView(binding, branch, cpu, _flag, 1, shape[..1], TensorElementType.Bool);
        }

        if (_graph.TokenTypeIdsName is { } tokenTypes)
        {
            shape[1] = _n;
            OrtNative.BindInputView(binding, tokenTypes, cpu, _tokenTypes, cells * GraphRun.IntegerSize(_sig.TokenTypeType), shape, _sig.TokenTypeType);
        }

        if (_graph.CachePositionName is { } cachePosition)
        {
            shape[0] = _n;
            OrtNative.BindInputView(binding, cachePosition, cpu, _cachePositions, _n * GraphRun.IntegerSize(_sig.CachePositionType), shape[..1], _sig.CachePositionType);
        }

        if (_graph.LogitsToKeepName is { } keep)
        {
            shape[0] = 1;
            OrtNative.BindInputView(binding, keep, cpu, _keep, GraphRun.IntegerSize(_sig.LogitsToKeepType), shape[.._sig.LogitsToKeepRank], _sig.LogitsToKeepType);
        }
    }

    /// <summary>
    /// Runs the graph through the managed API on what the feed holds, after <paramref name="past"/> (the caller's tensors,
    /// left to the caller) or after an empty past when it is null, and returns <paramref name="outputNames"/>' values
    /// allocated by ONNX Runtime on the host (also on CUDA), for the caller to dispose. Prefill of a batch, scoring and
    /// attention maps run this way; decode steps bind views instead (<see cref="Bind"/>).
    /// </summary>
    public IDisposableReadOnlyCollection<OrtValue> Run(InferenceSession session, RunOptions runOptions, IReadOnlyList<OrtValue>? past,
        IReadOnlyList<string> outputNames, CancellationToken cancellationToken)
    {
        var names = new List<string>(4 + _sig.PastNames.Length);
        var values = new List<OrtValue>(4 + _sig.PastNames.Length);
        try
        {
            AddTo(names, values);
            var owned = values.Count; // the feed's tensors and an empty past are this run's; the past views are the caller's
            if (past is null) AddEmptyPast(names, values);
            else
            {
                names.AddRange(_sig.PastNames);
                values.AddRange(past);
            }

            try
            {
                return GraphRun.Cancellable(runOptions, cancellationToken, () => session.Run(runOptions, names, values, outputNames));
            }
            finally
            {
                if (past is not null) values.RemoveRange(owned, past.Count);
            }
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
    }

    /// <summary>
    /// Adds the inputs to <paramref name="names"/> and <paramref name="values"/> as tensors over this feed's buffer, for a run
    /// through the managed API (<see cref="Run"/>); the caller disposes the values after the run.
    /// </summary>
    public void AddTo(List<string> names, List<OrtValue> values)
    {
        var cpu = OrtMemoryInfo.DefaultInstance;
        long[] shape = [_rows, _n];
        var cells = (long)_rows * _n;
        Add(_sig.InputIds, OrtValue.CreateTensorValueWithData(cpu, _sig.IdType, shape, (IntPtr)_ids, cells * GraphRun.IntegerSize(_sig.IdType)));
        if (_sig.PositionIds is { } positions)
        {
            Add(positions, OrtValue.CreateTensorValueWithData(cpu, _sig.PositionType, shape, (IntPtr)_positions, cells * GraphRun.IntegerSize(_sig.PositionType)));
        }

        if (_sig.AttentionMask is { } mask)
        {
            Add(mask, OrtValue.CreateTensorValueWithData(cpu, _sig.MaskType, [_rows, Columns], (IntPtr)MaskPointer(), MaskBytes()));
        }

        if (_sig.UseCacheBranch is { } branch)
        {
            Add(branch, OrtValue.CreateTensorValueWithData(cpu, TensorElementType.Bool, [1], (IntPtr)_flag, 1));
        }

        if (_sig.TokenTypeIds is { } tokenTypes)
        {
            Add(tokenTypes, OrtValue.CreateTensorValueWithData(cpu, _sig.TokenTypeType, shape, (IntPtr)_tokenTypes, cells * GraphRun.IntegerSize(_sig.TokenTypeType)));
        }

        if (_sig.CachePosition is { } cachePosition)
        {
            Add(cachePosition, OrtValue.CreateTensorValueWithData(cpu, _sig.CachePositionType, [_n], (IntPtr)_cachePositions, _n * GraphRun.IntegerSize(_sig.CachePositionType)));
        }

        if (_sig.LogitsToKeep is { } keep)
        {
            Add(keep, OrtValue.CreateTensorValueWithData(cpu, _sig.LogitsToKeepType, _sig.LogitsToKeepRank == 0 ? [] : [1], (IntPtr)_keep, GraphRun.IntegerSize(_sig.LogitsToKeepType)));
        }

        void Add(string name, OrtValue value)
        {
            names.Add(name);
            values.Add(value);
        }
    }

    /// <summary>Adds an empty past (no positions) for the run's rows: a run from nothing.</summary>
    private void AddEmptyPast(List<string> names, List<OrtValue> values)
    {
        var empty = _sig.CacheShape(_rows, 0);
        foreach (var name in _sig.PastNames)
        {
            names.Add(name);
            values.Add(OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, _sig.KvType, empty));
        }
    }

    public void Dispose()
    {
        _buffer?.Dispose();
        _buffer = null;
        _maskBuffer?.Dispose();
        _maskBuffer = null;
    }

    /// <summary>
    /// Makes <paramref name="buffer"/> hold at least <paramref name="bytes"/> (contents not kept). Sizes are powers of two, so
    /// when a buffer grows depends on what a run needs, not on the runs before it.
    /// </summary>
    private static void Ensure([NotNull] ref NativeBuffer? buffer, long bytes)
    {
        if (buffer is not null && buffer.Bytes >= bytes) return;
        buffer?.Dispose();
        buffer = null;
        buffer = new NativeBuffer((long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(bytes, 64)), zeroed: false);
    }

    private long MaskBytes() => (long)_rows * Columns * GraphRun.IntegerSize(_sig.MaskType);

    /// <summary>The run's mask: its own when a row is padded, else a view of the graph's shared ones.</summary>
    private byte* MaskPointer() => _padded ? _mask : _graph.MaskOnes(_rows * Columns).Pointer;

    private void FillMask(int start, int count, long value)
    {
        if (count <= 0) return;
        if (_sig.MaskType == TensorElementType.Int64) new Span<long>((long*)_mask + start, count).Fill(value);
        else new Span<int>((int*)_mask + start, count).Fill((int)value);
    }
}
