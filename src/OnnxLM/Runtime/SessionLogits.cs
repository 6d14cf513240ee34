using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// Where a session's run puts its logits [1, n, vocab] and how the wanted rows come back as float32. A host step's one row
/// goes to a buffer kept here (nothing allocated per token). Several rows go to ONNX Runtime's arena, which reuses that
/// memory run after run (a fresh [n, vocab] buffer would cost its page faults every prefill). On a device, rows before the
/// first wanted one stay in device memory and only the rest is sliced and brought back.
/// </summary>
internal sealed unsafe class SessionLogits(DecoderGraph graph, int vocab, string graphPath) : IDisposable
{
    private NativeBuffer? _row;
    private int _n;
    private int _from;
    private bool _intoRow;
    private bool _slice;

    /// <summary>Whether the run's outputs must be fetched to read the logits (they are the first output).</summary>
    public bool InOutputs => !_intoRow;

    /// <summary>
    /// Binds the logits output (before any other output, so it is the first) of a run over <paramref name="n"/> tokens whose
    /// rows from <paramref name="from"/> on are wanted; <paramref name="onDevice"/> when the run's outputs stay on a device.
    /// </summary>
    public void Bind(OrtIoBinding binding, int n, int from, bool onDevice)
    {
        var cpu = OrtMemoryInfo.DefaultInstance;
        var type = graph.Signature.LogitsType;
        (_n, _from) = (n, from);
        _intoRow = n == 1 && !onDevice;
        _slice = from > 0 && onDevice;
        if (_intoRow)
        {
            var bytes = (long)vocab * (type == TensorElementType.Float ? 4 : 2);
            _row ??= new NativeBuffer(bytes, zeroed: false);
            Span<long> shape = stackalloc long[3];
            shape[0] = 1;
            shape[1] = 1;
            shape[2] = vocab;
            OrtNative.BindOutputView(binding, graph.LogitsName, cpu, _row.Pointer, bytes, shape, type);
        }
        else
        {
            binding.BindOutputToDevice(graph.Signature.Logits, _slice ? graph.CacheMemory : cpu);
        }
    }

    /// <summary>
    /// Reads the bound run's logits (<paramref name="output"/> when <see cref="InOutputs"/>): the wanted rows into
    /// <paramref name="allLogits"/> when it is not empty, and the last row into <paramref name="next"/>.
    /// </summary>
    public void Read(OrtValue? output, Span<float> allLogits, float[] next)
    {
        var type = graph.Signature.LogitsType;
        if (_intoRow)
        {
            if (type == TensorElementType.Float) new ReadOnlySpan<float>(_row!.Pointer, vocab).CopyTo(next);
            else System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(_row!.Pointer, vocab), next);
            if (!allLogits.IsEmpty) next.CopyTo(allLogits);
        }
        else if (_slice)
        {
            using var rows = graph.LogitsSlicer.Slice([output!], _from, _n)[0];
            Read(rows, _n - _from, 0, allLogits, next);
        }
        else
        {
            Read(output!, _n, _from, allLogits, next);
        }
    }

    public void Dispose() => _row?.Dispose();

    private void Read(OrtValue logits, int n, int from, Span<float> allLogits, float[] next)
    {
        var shape = logits.GetTensorTypeAndShape().Shape;
        if (shape.Length != 3 || shape[1] != n || shape[2] != vocab)
        {
            throw new ModelFormatException($"The graph returned logits of shape [{string.Join(", ", shape)}]; expected [1, {n}, {vocab}].", graphPath);
        }

        var type = graph.Signature.LogitsType;
        if (!allLogits.IsEmpty)
        {
            var rows = n - from;
            GraphRun.CopyAsFloat(logits, type, from * vocab, rows * vocab, allLogits);
            allLogits.Slice((rows - 1) * vocab, vocab).CopyTo(next);
        }
        else
        {
            GraphRun.CopyAsFloat(logits, type, (n - 1) * vocab, vocab, next);
        }
    }
}
