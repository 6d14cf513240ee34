using System.Text.Json.Nodes;

namespace OnnxLM.ModelBuilder;

/// <summary>The architecture facts a decoder graph is built from, read from a Hugging Face <c>config.json</c>.</summary>
public sealed record DecoderConfig
{
    /// <summary>"llama" (also Mistral, Qwen2, SmolLM, TinyLlama: the Llama family) or "gpt2".</summary>
    public required string ModelType { get; init; }

    /// <summary>Hidden size.</summary>
    public required int HiddenSize { get; init; }

    /// <summary>MLP inner size.</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>Query heads.</summary>
    public required int AttentionHeadCount { get; init; }

    /// <summary>Key/value heads (grouped-query attention when fewer than query heads).</summary>
    public required int KeyValueHeadCount { get; init; }

    /// <summary>Size of one head.</summary>
    public required int HeadSize { get; init; }

    /// <summary>Decoder layers.</summary>
    public required int LayerCount { get; init; }

    /// <summary>Vocabulary size (rows of the embedding).</summary>
    public required int VocabularySize { get; init; }

    /// <summary>Most positions the model supports (RoPE table / learned positions size).</summary>
    public required int MaxPositions { get; init; }

    /// <summary>Normalization epsilon (RMSNorm or LayerNorm).</summary>
    public float NormEpsilon { get; init; } = 1e-5f;

    /// <summary>RoPE base.</summary>
    public double RopeTheta { get; init; } = 10000;

    /// <summary>RoPE scaling type: null, "linear" or "llama3".</summary>
    public string? RopeScalingType { get; init; }

    /// <summary>RoPE scaling factor.</summary>
    public double RopeScalingFactor { get; init; } = 1;

    /// <summary>llama3 scaling: low frequency factor.</summary>
    public double RopeLowFrequencyFactor { get; init; } = 1;

    /// <summary>llama3 scaling: high frequency factor.</summary>
    public double RopeHighFrequencyFactor { get; init; } = 4;

    /// <summary>llama3 scaling: the context length before scaling.</summary>
    public int RopeOriginalMaxPositions { get; init; } = 8192;

    /// <summary>Whether the output projection reuses the embedding matrix.</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>Whether q/k/v projections have biases (Qwen2).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>BOS id.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>EOS ids.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Pad id.</summary>
    public int? PadTokenId { get; init; }

    /// <summary>Reads <c>config.json</c> from a Hugging Face model folder.</summary>
    /// <exception cref="ModelFormatException">Missing file, unknown model_type or missing fields.</exception>
    public static DecoderConfig Load(string folder)
    {
        var file = Path.Combine(folder, "config.json");
        if (!File.Exists(file))
        {
            throw new ModelFormatException($"'{folder}' has no config.json (a Hugging Face checkpoint folder is expected).", folder);
        }

        var json = JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new ModelFormatException($"{file} is not a JSON object.", file);
        var type = (string?)json["model_type"] ?? throw new ModelFormatException($"{file} has no model_type.", file);
        int Required(params string[] keys) =>
            keys.Select(k => json[k]).OfType<JsonValue>().Select(v => (int?)v.GetValue<int>()).FirstOrDefault()
            ?? throw new ModelFormatException($"{file} has none of {string.Join(", ", keys)}.", file);
        int? Optional(string key) => json[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i : null;

        IReadOnlyList<int> eos = json["eos_token_id"] switch
        {
            JsonArray a => a.Select(n => (int)n!).ToArray(),
            JsonValue v when v.TryGetValue<int>(out var i) => [i],
            _ => [],
        };

        switch (type)
        {
            case "llama" or "mistral" or "qwen2":
                var hidden = Required("hidden_size");
                var heads = Required("num_attention_heads");
                var scaling = json["rope_scaling"] as JsonObject;
                var scalingType = (string?)scaling?["rope_type"] ?? (string?)scaling?["type"];
                if (scalingType is not (null or "default" or "linear" or "llama3"))
                {
                    throw new ModelFormatException($"{file}: rope_scaling type '{scalingType}' is not supported (linear, llama3).", file);
                }

                return new DecoderConfig
                {
                    ModelType = "llama",
                    HiddenSize = hidden,
                    IntermediateSize = Required("intermediate_size"),
                    AttentionHeadCount = heads,
                    KeyValueHeadCount = Optional("num_key_value_heads") ?? heads,
                    HeadSize = Optional("head_dim") ?? hidden / heads,
                    LayerCount = Required("num_hidden_layers"),
                    VocabularySize = Required("vocab_size"),
                    MaxPositions = Required("max_position_embeddings"),
                    NormEpsilon = (float?)json["rms_norm_eps"] ?? 1e-6f,
                    RopeTheta = (double?)json["rope_theta"] ?? 10000,
                    RopeScalingType = scalingType == "default" ? null : scalingType,
                    RopeScalingFactor = (double?)scaling?["factor"] ?? 1,
                    RopeLowFrequencyFactor = (double?)scaling?["low_freq_factor"] ?? 1,
                    RopeHighFrequencyFactor = (double?)scaling?["high_freq_factor"] ?? 4,
                    RopeOriginalMaxPositions = (int?)scaling?["original_max_position_embeddings"] ?? 8192,
                    TieWordEmbeddings = (bool?)json["tie_word_embeddings"] ?? false,
                    AttentionBias = (bool?)json["attention_bias"] ?? type == "qwen2",
                    BosTokenId = Optional("bos_token_id"),
                    EosTokenIds = eos,
                    PadTokenId = Optional("pad_token_id"),
                };
            case "gpt2":
                var embd = Required("n_embd", "hidden_size");
                var gptHeads = Required("n_head", "num_attention_heads");
                return new DecoderConfig
                {
                    ModelType = "gpt2",
                    HiddenSize = embd,
                    IntermediateSize = Optional("n_inner") ?? 4 * embd,
                    AttentionHeadCount = gptHeads,
                    KeyValueHeadCount = gptHeads,
                    HeadSize = embd / gptHeads,
                    LayerCount = Required("n_layer", "num_hidden_layers"),
                    VocabularySize = Required("vocab_size"),
                    MaxPositions = Required("n_positions", "max_position_embeddings"),
                    NormEpsilon = (float?)json["layer_norm_epsilon"] ?? 1e-5f,
                    TieWordEmbeddings = true,
                    BosTokenId = Optional("bos_token_id"),
                    EosTokenIds = eos,
                    PadTokenId = Optional("pad_token_id"),
                };
            default:
                throw new ModelFormatException(
                    $"{file}: model_type '{type}' is not supported; the builder writes GPT-2 (gpt2) and Llama-family (llama, mistral, qwen2) graphs.", file);
        }
    }
}
