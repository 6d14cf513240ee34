using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace OnnxLM;

/// <summary>How <see cref="LanguageModel.Load(string, LanguageModelOptions?)"/> sets up ONNX Runtime.</summary>
public sealed class LanguageModelOptions
{
    /// <summary>The default of <see cref="MaxBatchSize"/>.</summary>
    public const int DefaultMaxBatchSize = 16;

    /// <summary>Where to run the model. Default <see cref="ExecutionProvider.Auto"/>: CUDA when usable, otherwise the CPU.</summary>
    public ExecutionProvider ExecutionProvider { get; set; } = ExecutionProvider.Auto;

    /// <summary>The CUDA device index used by <see cref="ExecutionProvider.Cuda"/> and <see cref="ExecutionProvider.Auto"/>. Default 0.</summary>
    public int DeviceId { get; set => field = OptionCheck.AtLeast(value, 0, nameof(DeviceId)); }

    /// <summary>Threads ONNX Runtime uses inside one operator; 0 (the default) lets ONNX Runtime choose (one per physical core).</summary>
    public int IntraOpThreadCount { get; set => field = OptionCheck.AtLeast(value, 0, nameof(IntraOpThreadCount)); }

    /// <summary>
    /// The most concurrent generations decoded together in one model run per step (continuous batching): concurrent
    /// <c>GenerateAsync</c>/<c>GenerateStreamingAsync</c>/<c>GenerateChatAsync</c> calls on one model become rows of a
    /// shared batch, and <c>GenerateManyAsync</c> decodes its samples as one batch; more wait for a free row. Results are
    /// those of running each alone. 1 turns batching off (each call decodes in its own session, concurrently). Graphs
    /// that cannot take rows of different lengths (no dynamic batch dimension, attention mask or position ids, or fused
    /// attention such as GroupQueryAttention) always decode alone, and so does the CUDA provider for now (the batched cache
    /// is kept in host memory). Default <see cref="DefaultMaxBatchSize"/>; at most 256.
    /// </summary>
    public int MaxBatchSize { get; set => field = OptionCheck.InRange(value, 1, 256, nameof(MaxBatchSize)); } = DefaultMaxBatchSize;

    /// <summary>
    /// Called with the ONNX Runtime session options after OnnxLM has set its own, to pass anything through
    /// (graph optimization level, profiling, config entries). The options object is owned by OnnxLM.
    /// </summary>
    public Action<SessionOptions>? ConfigureSessionOptions { get; set; }

    /// <summary>
    /// For graphs whose attention is ONNX Runtime's <c>GroupQueryAttention</c> reading the past and writing the present
    /// directly (as ONNX Runtime GenAI's builder and OnnxLM's <c>--attention gqa</c> write them), bind one cache buffer per
    /// layer as both, so each step appends in place instead of copying the past into a new present. CPU only; default true.
    /// The results are the same either way (tests compare them); turning it off is for measuring.
    /// </summary>
    public bool ShareCacheBuffer { get; set; } = true;

    /// <summary>Where the model logs (provider choice and fallback reasons). Default: no logging.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }
}
