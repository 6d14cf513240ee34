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

    /// <summary>
    /// The external data file's name beside <c>model.onnx</c>; null (default) is ONNX Runtime GenAI's <c>model.onnx.data</c>.
    /// transformers.js and Optimum name it after the graph: <c>model_q4.onnx_data</c> for <c>model_q4.onnx</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The name is empty or has a folder part or characters a file name cannot have.</exception>
    public string? ExternalDataFileName
    {
        get => _externalDataFileName;
        set => _externalDataFileName = value is null || (value.Trim().Length > 0 && value.IndexOfAny([.. Path.GetInvalidFileNameChars(), '/', '\\']) < 0 && value is not ("." or ".."))
            ? value
            : throw new ArgumentException($"ExternalDataFileName must be a plain file name beside the graph (found '{value}').", nameof(ExternalDataFileName));
    }

    private string? _externalDataFileName;

    /// <summary>
    /// When above 0, external data is split into files of at most about this many bytes (a tensor is never split), named
    /// <c>name</c>, <c>name_1</c>, <c>name_2</c>, … as transformers.js loads them. Default 0: one file.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative.</exception>
    public long ExternalDataChunkBytes
    {
        get => _externalDataChunkBytes;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value, nameof(ExternalDataChunkBytes));
            _externalDataChunkBytes = value;
        }
    }

    private long _externalDataChunkBytes;

    /// <summary>
    /// Adds the scalar int64 input <c>num_logits_to_keep</c> as transformers exports have it: logits are computed for the last
    /// that many positions only, and 0 means all (the hidden states are sliced <c>[:, -k:]</c> before the output projection).
    /// Unlike transformers' exports, the input has a default, 0 (an initializer of the same name), so a runtime that does not
    /// feed it, such as ONNX Runtime GenAI, runs the graph as if it had no such input; OnnxLM feeds 1 for a prefill, whose
    /// other rows of logits nobody reads. <c>onnxlm convert</c> sets it.
    /// </summary>
    public bool LogitsToKeepInput { get; set; }

    /// <summary>
    /// Adds the int64 input <c>cache_position</c> [sequence], the new tokens' indices in the cache, and builds the causal mask
    /// from it as transformers does (standard attention only; a GroupQueryAttention graph takes it but reads lengths instead).
    /// </summary>
    public bool CachePositionInput { get; set; }

    /// <summary>
    /// Adds the int64 input <c>token_type_ids</c> [batch, sequence] as Gemma-style exports have it; a non-zero type adds a
    /// fixed vector to that token's embedding, so zeros (text) leave the model unchanged.
    /// </summary>
    public bool TokenTypeIdsInput { get; set; }

    /// <summary>
    /// A model whose graph file would exceed this many bytes with its weights inline (weights and graph counted) keeps its
    /// weights in an external data file, aligned so ONNX Runtime can memory-map them instead of copying them. Default
    /// 64 MiB; values above protobuf's 2 GiB limit act as that limit, so no <c>model.onnx</c> can be too large to load.
    /// </summary>
    public long ExternalDataThreshold { get; set; } = 64L << 20;
}
