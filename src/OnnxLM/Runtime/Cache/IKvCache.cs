using Microsoft.ML.OnnxRuntime;

namespace OnnxLM;

/// <summary>
/// One sequence's key/value cache as a <see cref="GenerationSession"/> holds it: bound to a run as past and present, then
/// committed, truncated, copied for a fork or emptied, wherever it lives. <see cref="HostKvCache"/> keeps it in host
/// buffers the session owns; <see cref="DeviceKvCache"/> keeps ONNX Runtime's present tensors in the provider's memory
/// (the GPU on CUDA) and slices them there.
/// </summary>
internal interface IKvCache : IDisposable
{
    /// <summary>
    /// Whether the run's outputs stay in device memory (<see cref="DecoderGraph.CacheMemory"/>), so logits rows the caller
    /// does not want are sliced there rather than brought back.
    /// </summary>
    bool OnDevice { get; }

    /// <summary>
    /// Binds the cache for a run that appends <paramref name="total"/> − <paramref name="length"/> tokens to
    /// <paramref name="length"/>: the past as input, the present as output. Call <see cref="Commit"/> after the run succeeds.
    /// </summary>
    void Bind(OrtIoBinding binding, int length, int total);

    /// <summary>
    /// Makes the present of the run just made the cache. <paramref name="presents"/> are the present outputs ONNX Runtime
    /// returned (empty when the caller fetched no outputs); the cache takes them over, keeping or disposing them.
    /// </summary>
    void Commit(ReadOnlySpan<OrtValue> presents);

    /// <summary>Keeps the first <paramref name="keep"/> of <paramref name="length"/> positions.</summary>
    void Truncate(int length, int keep);

    /// <summary>Makes this cache hold the first <paramref name="length"/> positions of <paramref name="source"/> (of the same kind).</summary>
    void CopyFrom(IKvCache source, int length);

    /// <summary>Frees what the cache holds beyond its positions (a spare buffer), for a session that waits between turns.</summary>
    void ReleaseSpare();

    /// <summary>Empties the cache.</summary>
    void Clear();
}
