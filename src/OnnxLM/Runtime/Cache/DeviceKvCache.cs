using Microsoft.ML.OnnxRuntime;

namespace OnnxLM;

/// <summary>
/// The cache as ONNX Runtime returns it (the CUDA path): each run's present outputs are bound to
/// <see cref="DecoderGraph.CacheMemory"/> and become the next past as they are, so the cache never leaves the device. A
/// rewind or fork slices it where it lives with the graph's <see cref="DeviceSlicer"/>: no prefill runs again. Tests use it
/// on the CPU (<see cref="DecoderGraph.UseHostCache"/> off) to run this path without a GPU.
/// </summary>
internal sealed class DeviceKvCache : IKvCache
{
    private readonly DecoderGraph _graph;
    private OrtValue[] _past;

    public DeviceKvCache(DecoderGraph graph)
    {
        _graph = graph;
        _past = CreateEmptyPast();
    }

    public bool OnDevice => true;

    public void Bind(OrtIoBinding binding, int length, int total)
    {
        var sig = _graph.Signature;
        for (var i = 0; i < _past.Length; i++)
        {
            binding.BindInput(sig.PastNames[i], _past[i]);
        }

        foreach (var name in sig.PresentNames)
        {
            binding.BindOutputToDevice(name, _graph.CacheMemory);
        }
    }

    public void Commit(ReadOnlySpan<OrtValue> presents) => ReplacePast(presents.ToArray());

    public void Truncate(int length, int keep) => ReplacePast(_graph.CacheSlicer.Slice(_past, 0, keep)); // sliced where it lives

    public void CopyFrom(IKvCache source, int length) =>
        ReplacePast(_graph.CacheSlicer.Slice(((DeviceKvCache)source)._past, 0, length)); // a copy where the cache lives

    public void ReleaseSpare()
    {
    }

    public void Clear() => ReplacePast(CreateEmptyPast());

    public void Dispose()
    {
        foreach (var value in _past) value.Dispose();
        _past = [];
    }

    private OrtValue[] CreateEmptyPast()
    {
        var sig = _graph.Signature;
        var past = new OrtValue[sig.PastNames.Length];
        for (var i = 0; i < past.Length; i++)
        {
            past[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, sig.KvType, sig.CacheShape(1, 0));
        }

        return past;
    }

    private void ReplacePast(OrtValue[] next)
    {
        var old = _past;
        _past = next;
        foreach (var value in old) value.Dispose();
    }
}
