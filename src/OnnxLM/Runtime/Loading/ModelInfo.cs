using Microsoft.ML.OnnxRuntime;

namespace OnnxLM;

/// <summary>What a loaded model is: its shape, vocabulary, context, cache layout and where it runs.</summary>
public sealed class ModelInfo
{
    internal ModelInfo() { }

    /// <summary>The model family as the config names it ("llama", "gpt2", "phi3", ...).</summary>
    public required string Architecture { get; init; }

    /// <summary>The folder layout the model was loaded from.</summary>
    public required ModelFolderLayout FolderLayout { get; init; }

    /// <summary>Full path of the ONNX graph.</summary>
    public required string GraphPath { get; init; }

    /// <summary>
    /// The precision of the graph loaded from a <see cref="ModelFolderLayout.TransformersJs"/> folder, by transformers.js's name
    /// (<c>fp32</c>, <c>fp16</c>, <c>q8</c>, <c>int8</c>, <c>uint8</c>, <c>q4</c>, <c>q4f16</c>, <c>bnb4</c>); null for other layouts.
    /// </summary>
    public string? Dtype { get; init; }

    /// <summary>
    /// The variant folder loaded from an <see cref="ModelFolderLayout.OnnxRuntimeGenAIVariants"/> folder, relative to it with '/'
    /// (<c>cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4</c>); null for other layouts.
    /// </summary>
    public string? Variant { get; init; }

    /// <summary>
    /// Graph inputs beyond ids, mask, positions, cache flag and cache that exporters add and OnnxLM feeds, by their names in the
    /// graph: <c>num_logits_to_keep</c>/<c>logits_to_keep</c> (how many last positions get logits; OnnxLM asks for only the rows
    /// it reads, and 0, meaning all, where it reads every row), <c>cache_position</c> (the new tokens' positions in the cache)
    /// and <c>token_type_ids</c> (zeros: text). Empty when the graph has none.
    /// </summary>
    public IReadOnlyList<string> ExtraInputs { get; init; } = [];

    /// <summary>Decoder layers.</summary>
    public required int LayerCount { get; init; }

    /// <summary>Query attention heads.</summary>
    public required int AttentionHeadCount { get; init; }

    /// <summary>Key/value heads (fewer than <see cref="AttentionHeadCount"/> with grouped-query attention).</summary>
    public required int KeyValueHeadCount { get; init; }

    /// <summary>Size of one attention head.</summary>
    public required int HeadSize { get; init; }

    /// <summary>Hidden (embedding) size.</summary>
    public required int HiddenSize { get; init; }

    /// <summary>Number of logits the model produces per position; valid token ids are 0 to this minus one.</summary>
    public required int VocabularySize { get; init; }

    /// <summary>The most tokens one sequence may hold.</summary>
    public required int ContextLength { get; init; }

    /// <summary>
    /// How the graph takes its past key/value cache: "separate" (one key and one value tensor per layer, each
    /// <c>[batch, kv_heads, seq, head_dim]</c>, as <c>past_key_values.%d.key</c>/<c>.value</c>) or "combined" (one tensor per
    /// layer with key and value stacked, <c>[2, batch, kv_heads, seq, head_dim]</c>, as <c>past_%d</c> in older GPT-2 exports).
    /// </summary>
    public required string KvCacheLayout { get; init; }

    /// <summary>Element type of the cache tensors: "float32" or "float16".</summary>
    public required string KvCacheDataType { get; init; }

    /// <summary>Bytes the key/value cache holds per token: keys and values of every layer and KV head.</summary>
    public long KvCacheBytesPerToken => 2L * LayerCount * KeyValueHeadCount * HeadSize * (KvCacheDataType == "float16" ? 2 : 4);

    /// <summary>
    /// What the weights are stored as: "float32", "float16" or "bfloat16" (the largest initializer's type), or "int4" /
    /// "int8" when the graph multiplies by block-quantized weights (MatMulNBits); "unknown" if the file could not be read.
    /// Stored float16 weights are usually computed in float32 after a cast.
    /// </summary>
    public string WeightType { get; init; } = "unknown";

    /// <summary>Whether the graph takes <c>position_ids</c> (otherwise positions are derived inside the graph).</summary>
    public required bool HasPositionIds { get; init; }

    /// <summary>Whether the graph takes an <c>attention_mask</c>.</summary>
    public required bool HasAttentionMask { get; init; }

    /// <summary>
    /// The graph's inputs as ONNX Runtime describes them, by name: element type, dimensions (−1 where dynamic) and the
    /// names of symbolic dimensions (<c>batch_size</c>, <c>past_sequence_length</c>…), in the graph's order.
    /// </summary>
    public IReadOnlyDictionary<string, NodeMetadata> GraphInputs { get; init; } = new Dictionary<string, NodeMetadata>();

    /// <summary>The graph's outputs as ONNX Runtime describes them, by name (logits, then the present key/value tensors).</summary>
    public IReadOnlyDictionary<string, NodeMetadata> GraphOutputs { get; init; } = new Dictionary<string, NodeMetadata>();

    /// <summary>The beginning-of-sequence token id from the model config, if any.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>End-of-sequence token ids from the model config (generation stops on any of them).</summary>
    public required IReadOnlyList<int> EosTokenIds { get; init; }

    /// <summary>The padding token id from the model config, if any.</summary>
    public int? PadTokenId { get; init; }

    /// <summary>
    /// The tokenizer's vocabulary size when it is larger than the model's (<see cref="VocabularySize"/>): its ids from
    /// the model's size up can be encoded but never generated or scored (a warning is logged at load). Null otherwise.
    /// </summary>
    public int? TokenizerVocabularySize { get; init; }

    /// <summary>The execution provider actually in use after loading (never <see cref="OnnxLM.ExecutionProvider.Auto"/>).</summary>
    public required ExecutionProvider ExecutionProvider { get; init; }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Architecture}: {LayerCount} layers, {AttentionHeadCount} heads ({KeyValueHeadCount} kv), head {HeadSize}, hidden {HiddenSize}, " +
        $"vocab {VocabularySize}, context {ContextLength}, {WeightType} weights, {KvCacheLayout} {KvCacheDataType} cache, on {ExecutionProvider}";
}
