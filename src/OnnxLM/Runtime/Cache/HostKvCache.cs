using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// A session's key/value cache in host memory it owns, bound to the graph as tensor views so no run allocates or
/// copies cache tensors on the managed side. Two schemes:
/// <list type="bullet">
/// <item><b>Swap</b> (graphs whose attention concatenates past and new keys into a fresh present): two buffers per cache
/// tensor. A run reads the past from one and ONNX Runtime writes the present straight into the other; the roles then
/// swap. The concatenation is the graph's own copy; nothing else is copied.</item>
/// <item><b>Shared</b> (graphs whose <c>GroupQueryAttention</c> reads the past and writes the present as graph
/// inputs/outputs): one buffer per tensor of <c>[1, kv_heads, capacity, head]</c> bound as both past and present, so the
/// operator appends the new keys in place (ONNX Runtime's past/present buffer sharing).</item>
/// </list>
/// Buffers grow by doubling up to the session's maximum length, so the cache holds about what the sequence needs, never
/// the whole context.
/// </summary>
internal sealed unsafe class HostKvCache : IKvCache
{
    private const int MinimumCapacity = 16;

    private readonly GraphSignature _sig;
    private readonly NativeName[] _pastNames;
    private readonly NativeName[] _presentNames;
    private readonly bool _shared;
    private readonly int _maxLength;
    private readonly int _blocks;   // [kv_heads] (or [2, kv_heads] combined) slabs per tensor
    private readonly int _rowBytes; // one position of one head
    private readonly NativeBuffer?[] _live;
    private readonly NativeBuffer?[] _spare;
    private int _liveCapacity;
    private int _spareCapacity;

    public HostKvCache(DecoderGraph graph, int maxLength)
    {
        var signature = graph.Signature;
        _sig = signature;
        _pastNames = graph.PastNames;
        _presentNames = graph.PresentNames;
        _shared = graph.SharesCacheBuffer;
        _maxLength = maxLength;
        _blocks = signature.KeyValueHeadCount * (signature.Layout == KvCacheLayout.Combined ? 2 : 1);
        _rowBytes = signature.HeadSize * (signature.KvType == TensorElementType.Float ? 4 : 2);
        _live = new NativeBuffer?[signature.PastNames.Length];
        _spare = new NativeBuffer?[signature.PastNames.Length];
    }

    /// <summary>Whether past and present are one buffer (GroupQueryAttention sharing).</summary>
    public bool Shared => _shared;

    public bool OnDevice => false;

    /// <summary>How many times buffers were allocated (they grow by doubling, so this stays small; tests check steady decoding adds none).</summary>
    public int Allocations { get; private set; }

    /// <summary>Native bytes held (both buffers of the swap scheme).</summary>
    public long Bytes => (long)(_liveCapacity + _spareCapacity) * _blocks * _rowBytes * _live.Length;

    public void Bind(OrtIoBinding binding, int length, int total)
    {
        var pastNames = _pastNames;
        var presentNames = _presentNames;
        Span<long> shape = stackalloc long[5];
        int rank;
        if (_shared)
        {
            EnsureLive(total, keep: length);
            var bytes = (long)_blocks * _liveCapacity * _rowBytes;
            rank = _sig.CacheShape(shape, 1, _liveCapacity);
            for (var i = 0; i < _live.Length; i++)
            {
                OrtNative.BindInputView(binding, pastNames[i], OrtMemoryInfo.DefaultInstance, _live[i]!.Pointer, bytes, shape[..rank], _sig.KvType);
                OrtNative.BindOutputView(binding, presentNames[i], OrtMemoryInfo.DefaultInstance, _live[i]!.Pointer, bytes, shape[..rank], _sig.KvType);
            }

            return;
        }

        EnsureLive(length, keep: length);
        EnsureSpare(total);
        for (var i = 0; i < _live.Length; i++)
        {
            rank = _sig.CacheShape(shape, 1, length);
            OrtNative.BindInputView(binding, pastNames[i], OrtMemoryInfo.DefaultInstance, _live[i]!.Pointer, (long)_blocks * length * _rowBytes, shape[..rank], _sig.KvType);
            _sig.CacheShape(shape, 1, total);
            OrtNative.BindOutputView(binding, presentNames[i], OrtMemoryInfo.DefaultInstance, _spare[i]!.Pointer, (long)_blocks * total * _rowBytes, shape[..rank], _sig.KvType);
        }
    }

    /// <summary>Makes the present just written the live cache (swap scheme; nothing to do when shared).</summary>
    /// <param name="presents">Views of this cache's own buffers, if the caller fetched them: disposed here.</param>
    public void Commit(ReadOnlySpan<OrtValue> presents)
    {
        foreach (var view in presents) view.Dispose();
        if (_shared) return;
        for (var i = 0; i < _live.Length; i++)
        {
            (_live[i], _spare[i]) = (_spare[i], _live[i]);
        }

        (_liveCapacity, _spareCapacity) = (_spareCapacity, _liveCapacity);
    }

    /// <summary>Keeps the first <paramref name="keep"/> of <paramref name="length"/> positions.</summary>
    public void Truncate(int length, int keep)
    {
        if (_shared || keep == length || _liveCapacity == 0) return; // shared: positions past the length are never read
        for (var i = 0; i < _live.Length; i++)
        {
            var buffer = _live[i]!;
            // Contiguous [blocks, length, row] becomes [blocks, keep, row]: each slab moves towards the start, in order.
            for (var b = 1; b < _blocks; b++)
            {
                buffer.AsSpan((long)b * length * _rowBytes, keep * _rowBytes).CopyTo(buffer.AsSpan((long)b * keep * _rowBytes, keep * _rowBytes));
            }
        }
    }

    /// <summary>
    /// The bytes of cache tensor <paramref name="tensor"/> holding <paramref name="length"/> positions, laid out as the graph's
    /// tensor <c>[1, kv_heads, length, head]</c> (or combined <c>[2, 1, …]</c>); swap scheme only (the shared one is strided).
    /// </summary>
    public ReadOnlySpan<byte> Live(int tensor, int length)
    {
        if (_shared) throw new InvalidOperationException("A shared cache buffer is strided by its capacity; it has no contiguous view.");
        return _live[tensor] is { } buffer ? buffer.AsSpan(0, _blocks * length * _rowBytes) : ReadOnlySpan<byte>.Empty;
    }

    /// <summary>
    /// Copies the first <paramref name="length"/> positions of cache tensor <paramref name="tensor"/> into
    /// <paramref name="destination"/>, laid out as the graph's tensor <c>[1, kv_heads, length, head]</c> (either scheme).
    /// </summary>
    public void CopyLive(int tensor, int length, Span<byte> destination)
    {
        if (length == 0) return;
        var stride = _shared ? _liveCapacity : length;
        var source = _live[tensor] ?? throw new InvalidOperationException("The cache holds no positions.");
        for (var b = 0; b < _blocks; b++)
        {
            source.AsSpan((long)b * stride * _rowBytes, length * _rowBytes).CopyTo(destination.Slice(b * length * _rowBytes, length * _rowBytes));
        }
    }

    /// <summary>Makes this cache hold the first <paramref name="length"/> positions of <paramref name="other"/> (a host cache).</summary>
    public void CopyFrom(IKvCache other, int length)
    {
        var source = (HostKvCache)other;
        EnsureLive(length, keep: 0);
        var stride = _shared ? _liveCapacity : length;
        var sourceStride = source._shared ? source._liveCapacity : length;
        for (var i = 0; i < _live.Length; i++)
        {
            for (var b = 0; b < _blocks; b++)
            {
                source._live[i]!.AsSpan((long)b * sourceStride * _rowBytes, length * _rowBytes)
                    .CopyTo(_live[i]!.AsSpan((long)b * stride * _rowBytes, length * _rowBytes));
            }
        }
    }

    /// <summary>Frees the second buffer of the swap scheme (a parked session keeps only its cache); the next run reallocates it.</summary>
    public void ReleaseSpare()
    {
        for (var i = 0; i < _spare.Length; i++)
        {
            _spare[i]?.Dispose();
            _spare[i] = null;
        }

        _spareCapacity = 0;
    }

    /// <summary>Empties the cache and frees its memory.</summary>
    public void Clear()
    {
        ReleaseSpare();
        for (var i = 0; i < _live.Length; i++)
        {
            _live[i]?.Dispose();
            _live[i] = null;
        }

        _liveCapacity = 0;
    }

    public void Dispose() => Clear();

    /// <summary>
    /// The next capacity: double (at least what is needed), or the session's maximum once that is less than twice as much,
    /// since one more doubling would reach it anyway. A session sized for its prompt and answer so allocates its whole cache
    /// once at the prompt, instead of copying the full cache again at the first decode step.
    /// </summary>
    private int Grow(int capacity, int needed)
    {
        var grown = Math.Max(needed, Math.Max(MinimumCapacity, capacity * 2));
        return grown > _maxLength / 2 ? Math.Max(needed, _maxLength) : grown;
    }

    /// <summary>Makes the live buffers hold at least <paramref name="needed"/> positions, keeping the first <paramref name="keep"/>.</summary>
    private void EnsureLive(int needed, int keep)
    {
        if (_live[0] is not null && _liveCapacity >= needed) return;
        var capacity = Grow(_liveCapacity, needed);
        var bytes = (long)_blocks * capacity * _rowBytes;
        var fresh = new NativeBuffer?[_live.Length];
        try
        {
            for (var i = 0; i < fresh.Length; i++)
            {
                fresh[i] = new NativeBuffer(bytes);
                if (keep > 0 && _live[i] is { } old)
                {
                    // Only the shared scheme re-strides (its slabs are capacity long); swap-scheme slabs are exactly keep long.
                    var oldStride = _shared ? _liveCapacity : keep;
                    var newStride = _shared ? capacity : keep;
                    for (var b = 0; b < _blocks; b++)
                    {
                        old.AsSpan((long)b * oldStride * _rowBytes, keep * _rowBytes).CopyTo(fresh[i]!.AsSpan((long)b * newStride * _rowBytes, keep * _rowBytes));
                    }
                }
            }
        }
        catch
        {
            foreach (var buffer in fresh) buffer?.Dispose();
            throw;
        }

        for (var i = 0; i < _live.Length; i++)
        {
            _live[i]?.Dispose();
            _live[i] = fresh[i];
        }

        _liveCapacity = capacity;
        Allocations++;
    }

    private void EnsureSpare(int needed)
    {
        if (_spare[0] is not null && _spareCapacity >= needed) return;
        var capacity = Grow(Math.Max(_spareCapacity, _liveCapacity), needed);
        ReleaseSpare();
        var bytes = (long)_blocks * capacity * _rowBytes;
        for (var i = 0; i < _spare.Length; i++)
        {
            _spare[i] = new NativeBuffer(bytes);
        }

        _spareCapacity = capacity;
        Allocations++;
    }
}
