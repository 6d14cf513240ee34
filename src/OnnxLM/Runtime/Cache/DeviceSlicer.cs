using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// Slices tensors along one axis on the model's own execution provider: a one-node ONNX graph (<c>Slice</c>) run with its
/// input in device memory and its output bound where the caller wants it. On CUDA, slicing the cache is a device-to-device
/// copy, so <see cref="GenerationSession.Fork"/>, <see cref="GenerationSession.Rewind"/> and speculative truncation never
/// bring the cache to the host nor re-run the prefill; slicing a prefill's logits to their last row copies one row to the
/// host, not the whole [n, vocab]. The graph is written here, not loaded from a file.
/// </summary>
internal sealed class DeviceSlicer : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtMemoryInfo _output;
    private readonly int _axis;

    /// <param name="type">The tensors' element type.</param>
    /// <param name="rank">Their number of dimensions.</param>
    /// <param name="axis">The axis sliced.</param>
    /// <param name="addProvider">Adds the model's execution provider to the slicer's session options.</param>
    /// <param name="output">Where results are written.</param>
    public DeviceSlicer(TensorElementType type, int rank, int axis, Action<SessionOptions> addProvider, OrtMemoryInfo output)
    {
        _output = output;
        _axis = axis;
        using var options = new SessionOptions();
        addProvider(options);
        _session = new InferenceSession(SliceModel(type, rank), options);
    }

    /// <summary>New tensors holding [<paramref name="start"/>, <paramref name="end"/>) of each of <paramref name="values"/> along the axis.</summary>
    public OrtValue[] Slice(OrtValue[] values, long start, long end)
    {
        var result = new OrtValue[values.Length];
        using var binding = _session.CreateIoBinding();
        using var starts = OrtValue.CreateTensorValueFromMemory(new long[] { start }, [1]);
        using var ends = OrtValue.CreateTensorValueFromMemory(new long[] { end }, [1]);
        using var axes = OrtValue.CreateTensorValueFromMemory(new long[] { _axis }, [1]);
        using var runOptions = new RunOptions();
        try
        {
            for (var i = 0; i < values.Length; i++)
            {
                binding.BindInput("x", values[i]);
                binding.BindInput("starts", starts);
                binding.BindInput("ends", ends);
                binding.BindInput("axes", axes);
                binding.BindOutputToDevice("y", _output);
                _session.RunWithBinding(runOptions, binding);
                result[i] = binding.GetOutputValues()[0];
                binding.ClearBoundInputs();
                binding.ClearBoundOutputs();
            }

            return result;
        }
        catch
        {
            foreach (var value in result) value?.Dispose();
            throw;
        }
    }

    public void Dispose() => _session.Dispose();

    /// <summary>The ONNX model <c>y = Slice(x, starts, ends, axes)</c> for a tensor of <paramref name="rank"/> dimensions, as protobuf bytes.</summary>
    internal static byte[] SliceModel(TensorElementType type, int rank)
    {
        var node = new Proto()
            .String(1, "x").String(1, "starts").String(1, "ends").String(1, "axes")
            .String(2, "y").String(3, "slice").String(4, "Slice");
        var graph = new Proto()
            .Message(1, node)
            .String(2, "cache_slice")
            .Message(11, Value("x", (int)type, rank)).Message(11, Value("starts", (int)TensorElementType.Int64, 1))
            .Message(11, Value("ends", (int)TensorElementType.Int64, 1)).Message(11, Value("axes", (int)TensorElementType.Int64, 1))
            .Message(12, Value("y", (int)type, rank));
        var model = new Proto()
            .Varint(1, 8)                                   // ir_version
            .String(2, "OnnxLM")                            // producer_name
            .Message(7, graph)
            .Message(8, new Proto().String(1, "").Varint(2, 13)); // opset_import: ai.onnx 13
        return model.ToArray();

        static Proto Value(string name, int elementType, int rank)
        {
            var shape = new Proto();
            for (var d = 0; d < rank; d++) shape.Message(1, new Proto().String(2, $"d{d}")); // symbolic dims
            var tensor = new Proto().Varint(1, elementType).Message(2, shape);
            return new Proto().String(1, name).Message(2, new Proto().Message(1, tensor));
        }
    }

    /// <summary>Just enough protobuf writing for <see cref="SliceModel"/>: varints, strings and nested messages.</summary>
    private sealed class Proto
    {
        private readonly MemoryStream _bytes = new();

        public Proto Varint(int field, long value)
        {
            Key(field, 0);
            Write((ulong)value);
            return this;
        }

        public Proto String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public Proto Message(int field, Proto message) => Bytes(field, message.ToArray());

        public byte[] ToArray() => _bytes.ToArray();

        private Proto Bytes(int field, byte[] value)
        {
            Key(field, 2);
            Write((ulong)value.Length);
            _bytes.Write(value);
            return this;
        }

        private void Key(int field, int wire) => Write((ulong)((field << 3) | wire));

        private void Write(ulong value)
        {
            while (value >= 0x80)
            {
                _bytes.WriteByte((byte)(value | 0x80));
                value >>= 7;
            }

            _bytes.WriteByte((byte)value);
        }
    }
}
