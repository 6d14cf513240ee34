namespace OnnxLM.Hosting;

/// <summary>
/// Settings of a hosted OnnxLM model, usually bound from configuration (<c>"OnnxLM": { "ModelPath": … }</c>).
/// Checked when the host starts (<see cref="OnnxLMOptionsValidator"/>): a bad value fails the start naming its key.
/// </summary>
public sealed class OnnxLMOptions
{
    /// <summary>The model folder (required).</summary>
    public string? ModelPath { get; set; }

    /// <summary>The name requests and telemetry use for the model; default the folder's name. A request naming another model fails.</summary>
    public string? ModelId { get; set; }

    /// <summary>Where the model runs (default <see cref="OnnxLM.ExecutionProvider.Auto"/>: CUDA when usable, else CPU).</summary>
    public ExecutionProvider ExecutionProvider { get; set; } = ExecutionProvider.Auto;

    /// <summary>
    /// The precision to load from a transformers.js / onnx-community folder (graphs in <c>onnx/</c>): fp32, fp16, q8, int8,
    /// uint8, q4, q4f16 or bnb4; null (default) for the provider's default order. See <see cref="LanguageModelOptions.Dtype"/>.
    /// </summary>
    public string? Dtype { get; set; }

    /// <summary>
    /// The variant to load from an ONNX Runtime GenAI hub folder (<c>cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4</c>, or
    /// its last segment); null (default) chooses by provider. See <see cref="LanguageModelOptions.Variant"/>.
    /// </summary>
    public string? Variant { get; set; }

    /// <summary>
    /// A folder where the CPU provider's prepacked weights are kept between starts (faster loads, less private memory);
    /// null (default) keeps none. See <see cref="LanguageModelOptions.WeightCacheDirectory"/>.
    /// </summary>
    public string? WeightCacheDirectory { get; set; }

    /// <summary>The CUDA device (default 0).</summary>
    public int DeviceId { get; set; }

    /// <summary>ONNX Runtime's intra-op threads; null for its default.</summary>
    public int? IntraOpThreadCount { get; set; }

    /// <summary>
    /// Requests decoded at the same time (default 1); the others wait in the queue. Above 1 they decode together, one
    /// model run per step for all (continuous batching, <see cref="LanguageModelOptions.MaxBatchSize"/>, up to 256 rows),
    /// except requests with a <c>ChatOptions.ConversationId</c>, which keep their conversation's cached session and decode alone.
    /// </summary>
    public int MaxConcurrentSequences { get; set; } = 1;

    /// <summary>Requests that may wait for a free sequence (default 64); one more fails at once with <see cref="OnnxLMQueueFullException"/>.</summary>
    public int MaxQueueLength { get; set; } = 64;

    /// <summary>Load the model when the host starts (default true); false loads it on the first request.</summary>
    public bool LoadEagerly { get; set; } = true;

    /// <summary>Run one short generation when the host starts, so the first request does not pay for first-run work (default false).</summary>
    public bool WarmUp { get; set; }

    /// <summary>
    /// Conversations whose key/value cache is kept for requests that continue them (default 4, 0 keeps none). With
    /// batching on (<see cref="MaxConcurrentSequences"/> above 1) only requests that name a <c>ChatOptions.ConversationId</c> use it.
    /// </summary>
    public int CachedConversations { get; set; } = 4;

    /// <summary>A chat template file (<c>.jinja</c>) to use instead of the model's own; null for the model's.</summary>
    public string? ChatTemplatePath { get; set; }

    /// <summary>Log prompt and reply text at Debug level (default false: logs carry counts and timings only).</summary>
    public bool LogContent { get; set; }

    /// <summary>Generation settings for requests that do not set them.</summary>
    public OnnxLMGenerationDefaults Defaults { get; set; } = new();
}

/// <summary>Generation defaults of a hosted model; a request's <c>ChatOptions</c> override them field by field.</summary>
public sealed class OnnxLMGenerationDefaults
{
    /// <summary>Most tokens of a reply (default 512).</summary>
    public int MaxOutputTokens { get; set; } = 512;

    /// <summary>Sampling temperature, 0 for greedy (default 0.7).</summary>
    public float Temperature { get; set; } = 0.7f;

    /// <summary>Nucleus sampling threshold in (0, 1] (default 0.95).</summary>
    public float TopP { get; set; } = 0.95f;

    /// <summary>Keep the k most likely tokens, 0 for off (default 0).</summary>
    public int TopK { get; set; }

    /// <summary>Hugging Face repetition penalty, 1 for off (default 1).</summary>
    public float RepetitionPenalty { get; set; } = 1f;
}
