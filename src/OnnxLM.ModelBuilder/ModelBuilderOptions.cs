namespace OnnxLM.ModelBuilder;

/// <summary>How <see cref="DecoderModelBuilder"/> writes a model folder.</summary>
public sealed class ModelBuilderOptions
{
    /// <summary>Store weights as float16 (halves the file; computation stays float32 after a Cast at load). Default false.</summary>
    public bool Float16Weights { get; set; }

    /// <summary>
    /// Quantize the projection and MLP weights (and by default the output projection) to 4 or 8 bits per weight,
    /// written as ONNX Runtime's MatMulNBits operator; null (default) keeps every weight floating point. The other
    /// weights (embeddings, norms, biases) follow <see cref="Float16Weights"/>.
    /// </summary>
    public WeightQuantization? Quantization { get; set; }

    /// <summary>
    /// How each layer's attention is written: standard ONNX operators (default) or one ONNX Runtime GroupQueryAttention
    /// node that shares the past/present cache buffer. See <see cref="AttentionOperator"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not an <see cref="AttentionOperator"/> member.</exception>
    public AttentionOperator Attention
    {
        get => _attention;
        set => _attention = Enum.IsDefined(value)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Attention), value, "Attention must be Standard or GroupQuery.");
    }

    private AttentionOperator _attention;

    /// <summary>
    /// Also output each layer's attention probabilities as <c>attentions.%d</c> [batch, heads, query, key]
    /// (<see cref="AttentionOperator.Standard"/> graphs only).
    /// </summary>
    public bool OutputAttentions { get; set; }

    /// <summary>Context length written to genai_config.json; null uses the config's max_position_embeddings.</summary>
    public int? ContextLength { get; set; }

    /// <summary>Weights above this many bytes go to an external data file (ONNX protobufs cannot exceed 2 GB). Default 2 GB.</summary>
    public long ExternalDataThreshold { get; set; } = 2L << 30;
}
