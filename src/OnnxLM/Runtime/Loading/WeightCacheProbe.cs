using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// The check a new <see cref="WeightCache"/> entry passes before it is trusted: one decoding step (one token, an empty
/// cache) through the original session and through the session of the saved graph must give the same logits. ONNX Runtime
/// 1.31 saves the prepacked MatMulNBits weights of some graphs wrongly (the saved graph of the int4 kjv-tiny gives NaN or
/// zero logits, that of Llama-3.2-1B's shape exact ones), and the packed layout is the same for one token as for many.
/// </summary>
internal static class WeightCacheProbe
{
    /// <summary>The logits of one step through <paramref name="session"/>, or why the check cannot run on this graph.</summary>
    public static (float[]? Logits, string? Problem) Run(InferenceSession session, GraphSignature signature)
    {
        var inputs = new List<NamedOnnxValue>();
        foreach (var (name, metadata) in session.InputMetadata)
        {
            if (Input(name, metadata, signature) is not { } input) return (null, $"the check cannot feed input '{name}' ({metadata.ElementDataType})");
            inputs.Add(input);
        }

        using var results = session.Run(inputs, [signature.Logits]);
        return results[0].Value switch
        {
            Tensor<float> values => (values.ToArray(), null),
            Tensor<Float16> values => (values.ToArray().Select(v => (float)v).ToArray(), null),
            _ => (null, "the check cannot read logits of this type"),
        };
    }

    /// <summary>What differs between the original's logits and the saved graph's, or null when they agree (to 1e-4 relative, and finite).</summary>
    public static string? Compare(float[] expected, float[] actual)
    {
        if (expected.Length != actual.Length) return $"{actual.Length} logits instead of {expected.Length}";
        for (var i = 0; i < expected.Length; i++)
        {
            if (!float.IsFinite(expected[i])) return $"the original graph's own logit {i} is {expected[i]}";
            if (!(Math.Abs(actual[i] - expected[i]) <= 1e-4f * Math.Max(1f, Math.Abs(expected[i]))))
            {
                return $"logit {i} is {actual[i]} instead of {expected[i]}";
            }
        }

        return null;
    }

    /// <summary>
    /// One token at position 0 with an empty cache: dynamic dimensions are 1 except a cache input's sequence (its second
    /// dynamic dimension), which is 0; the mask and the token are 1, every other integer 0 and every flag false.
    /// </summary>
    private static NamedOnnxValue? Input(string name, NodeMetadata metadata, GraphSignature signature)
    {
        var past = Array.IndexOf(signature.PastNames, name) >= 0;
        var dims = new int[metadata.Dimensions.Length];
        var dynamic = 0;
        for (var i = 0; i < dims.Length; i++)
        {
            dims[i] = metadata.Dimensions[i] >= 0 ? metadata.Dimensions[i] : past && dynamic++ > 0 ? 0 : 1;
        }

        var one = name == signature.AttentionMask || name == signature.InputIds;
        return metadata.ElementDataType switch
        {
            TensorElementType.Int64 => Filled(name, dims, one ? 1L : 0L),
            TensorElementType.Int32 => Filled(name, dims, one ? 1 : 0),
            TensorElementType.Bool => Filled(name, dims, false),
            TensorElementType.Float => Filled(name, dims, 0f),
            TensorElementType.Float16 => Filled(name, dims, (Float16)0),
            _ => null,
        };
    }

    private static NamedOnnxValue Filled<T>(string name, int[] dims, T value)
    {
        var tensor = new DenseTensor<T>(dims);
        tensor.Fill(value);
        return NamedOnnxValue.CreateFromTensor(name, tensor);
    }
}
