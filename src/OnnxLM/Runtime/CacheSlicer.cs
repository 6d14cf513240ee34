using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// Copies the first positions of cache tensors where they live, on the model's own execution provider: a one-node ONNX
/// graph (<c>Slice</c> along the sequence axis) run with its input and output bound in device memory. On CUDA this is a
/// device-to-device copy, so <see cref="GenerationSession.Fork"/>, <see cref="GenerationSession.Rewind"/> and speculative
/// truncation never bring the cache to the host nor re-run the prefill. The graph is written here, not loaded from a file.
/// </summary>
internal sealed class CacheSlicer : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtMemoryInfo _memory;
    private readonly int _axis;

    public CacheSlicer(GraphSignature signature, Action<SessionOptions> addProvider, OrtMemoryInfo memory)
    {
        _memory = memory;
        _axis = signature.Layout == KvCacheLayout.Combined ? 3 : 2;
        using var options = new SessionOptions();
        addProvider(options);
        _session = new InferenceSession(SliceModel(signature.KvType, signature.Layout == KvCacheLayout.Combined ? 5 : 4), options);
    }

    /// <summary>New tensors holding positions [0, <paramref name="keep"/>) of each of <paramref name="cache"/>, in the same memory.</summary>
    public OrtValue[] Slice(OrtValue[] cache, int keep)
    {
        var result = new OrtValue[cache.Length];
        using var binding = _session.CreateIoBinding();
        using var starts = OrtValue.CreateTensorValueFromMemory(new long[] { 0 }, [1]);
        using var ends = OrtValue.CreateTensorValueFromMemory(new long[] { keep }, [1]);
        using var axes = OrtValue.CreateTensorValueFromMemory(new long[] { _axis }, [1]);
        using var runOptions = new RunOptions();
        try
        {
            for (var i = 0; i < cache.Length; i++)
            {
                binding.BindInput("x", cache[i]);
                binding.BindInput("starts", starts);
                binding.BindInput("ends", ends);
                binding.BindInput("axes", axes);
                binding.BindOutputToDevice("y", _memory);
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
