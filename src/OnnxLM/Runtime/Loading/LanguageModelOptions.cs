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
    /// those of running each alone (up to rounding; on int4 graphs with int8 activations, <c>accuracy_level</c> 4, up to
    /// the different rounding ONNX Runtime gives one row and several: see <see cref="SpeculativeDecoding"/>). 1 turns batching off (each call decodes in its own session, concurrently). Graphs
    /// that cannot take rows of different lengths (no dynamic batch dimension, attention mask or position ids, or packed
    /// or paged attention) always decode alone, and so does the CUDA provider for now (the batched cache
    /// is kept in host memory). Default <see cref="DefaultMaxBatchSize"/>; at most 256.
    /// </summary>
    public int MaxBatchSize { get; set => field = OptionCheck.InRange(value, 1, 256, nameof(MaxBatchSize)); } = DefaultMaxBatchSize;

    /// <summary>The default of <see cref="PrefillChunkSize"/>.</summary>
    public const int DefaultPrefillChunkSize = 512;

    /// <summary>
    /// With batching on (<see cref="MaxBatchSize"/>), the most prompt tokens one model run prefills for a request joining a
    /// batch: a longer prompt is prefilled in chunks of this many tokens with a decode step of the other rows between two
    /// chunks, so a long prompt delays their next token by one chunk, not by its whole prefill. Results are the same.
    /// Default <see cref="DefaultPrefillChunkSize"/>; at least 1.
    /// </summary>
    public int PrefillChunkSize { get; set => field = OptionCheck.AtLeast(value, 1, nameof(PrefillChunkSize)); } = DefaultPrefillChunkSize;

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

    /// <summary>
    /// Which precision's graph to load from a transformers.js / onnx-community folder (graphs in <c>onnx/</c>), by the names
    /// transformers.js uses: <c>fp32</c> (<c>model.onnx</c>), <c>fp16</c>, <c>q8</c> (<c>model_quantized.onnx</c>), <c>int8</c>,
    /// <c>uint8</c>, <c>q4</c>, <c>q4f16</c>, <c>bnb4</c>. Null (the default) picks the first the folder has in the order
    /// <see cref="CpuDtypeOrder"/> on the CPU or <see cref="CudaDtypeOrder"/> on CUDA. A dtype the folder lacks fails the load
    /// with a <see cref="ModelFormatException"/> that lists the dtypes it has; a folder in another layout fails when one is given.
    /// </summary>
    /// <exception cref="ArgumentException">The value is empty or white space.</exception>
    public string? Dtype
    {
        get => _dtype;
        set => _dtype = value is null || !string.IsNullOrWhiteSpace(value)
            ? value?.Trim()
            : throw new ArgumentException("Dtype must be null or a dtype name such as q4 or fp16.", nameof(Dtype));
    }

    /// <summary>
    /// The dtypes tried, in order, when <see cref="Dtype"/> is null and the model runs on the CPU: 4-bit block-quantized
    /// weights first (q4: ONNX Runtime's MatMulNBits CPU kernels read an eighth of fp32's bytes per token and are its fastest
    /// decoding path), then the 8-bit files (q8, int8, uint8: a quarter of the bytes, dynamic-quantized MatMulInteger), then
    /// fp32 (exact), and last the half-precision files (fp16, q4f16), which the CPU provider runs mostly through inserted casts
    /// or not at all, and bnb4, whose CPU kernel is slower than q4's.
    /// </summary>
    public static IReadOnlyList<string> CpuDtypeOrder { get; } = ["q4", "q8", "int8", "uint8", "fp32", "fp16", "q4f16", "bnb4"];

    /// <summary>
    /// The dtypes tried, in order, when <see cref="Dtype"/> is null and the model runs on CUDA: half precision first (fp16, then
    /// q4f16, whose 4-bit weights have fp16 CUDA kernels), then fp32 and q4 (float activations, CUDA kernels exist), then bnb4,
    /// and last the 8-bit dynamic-quantized files (q8, int8, uint8), whose integer operators have no CUDA kernels and fall back to
    /// the CPU. On <see cref="ExecutionProvider.Auto"/> this order is used when the ONNX Runtime package in use has CUDA.
    /// </summary>
    public static IReadOnlyList<string> CudaDtypeOrder { get; } = ["fp16", "q4f16", "fp32", "q4", "bnb4", "q8", "int8", "uint8"];

    /// <summary>
    /// Which variant to load from an ONNX Runtime GenAI hub folder (variant folders each with a <c>genai_config.json</c>, such as
    /// <c>cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4</c>): its path relative to the folder (either slash) or its last
    /// segment when that is unique. Null (the default) picks by provider: a variant whose path names <c>cpu</c> on the CPU, or
    /// <c>cuda</c>/<c>gpu</c> on CUDA (preferring <c>acc-level-4</c> on the CPU and <c>fp16</c> on CUDA, then the first by
    /// path; on <see cref="ExecutionProvider.Auto"/> with CUDA usable, a CPU variant stands in when there is no CUDA one). A variant that is not there, or none for the provider, fails the load listing the variants; a folder in another
    /// layout fails when one is given.
    /// </summary>
    /// <exception cref="ArgumentException">The value is empty or white space.</exception>
    public string? Variant
    {
        get => _variant;
        set => _variant = value is null || !string.IsNullOrWhiteSpace(value)
            ? value?.Trim()
            : throw new ArgumentException("Variant must be null or a variant folder such as cuda/cuda-fp16.", nameof(Variant));
    }

    /// <summary>
    /// A folder where the CPU provider's prepacked weights are kept between loads; null (the default) keeps none. ONNX
    /// Runtime repacks block-quantized (int4/int8 MatMulNBits) weights into its kernels' layout at every load, on the
    /// private heap; with this set, the first load also saves the optimized graph with the packed weights there, and later
    /// loads map them from that file: faster loads and a smaller private heap, the pages shared by processes loading the
    /// same entry. Results are the same.
    /// </summary>
    /// <remarks>
    /// An entry costs about the model folder's size plus the packed weights on disk (a 0.8 GB 1B int4 folder gives a 1.8 GB
    /// entry) and is written on the first load, which takes that much longer. Entries are keyed by a hash of ONNX Runtime's
    /// version, the processor (model and feature flags on Linux; elsewhere only the architecture and core count), the graph's
    /// path, the length and last-write time of the graph and its external data files, <see cref="IntraOpThreadCount"/> and
    /// the folder's session settings, so a changed model, runtime or processor never reuses a stale entry. Each save deletes
    /// the entries that will not be used again: those whose source graph is gone or changed, those not loaded for 30 days,
    /// and saves that never finished once an hour old. Only the CPU provider uses it: on CUDA nothing is read or written, and neither when
    /// <see cref="ConfigureSessionOptions"/> is set, as what it does to the session cannot be keyed. A new entry is used only
    /// after one step through it gives the original graph's logits (ONNX Runtime 1.31 saves some graphs' packed weights
    /// wrongly: such a graph is marked <c>&lt;key&gt;.rejected</c> and loads without the cache). An unusable entry or a
    /// failed write (disk full, no permission) is logged as a warning and the model loads from its own files.
    /// </remarks>
    /// <exception cref="InvalidOptionException">The value is empty or white space.</exception>
    public string? WeightCacheDirectory
    {
        get => _weightCacheDirectory;
        set => _weightCacheDirectory = value is null || !string.IsNullOrWhiteSpace(value)
            ? value
            : throw OptionCheck.Refuse(nameof(WeightCacheDirectory), "must be null or a folder path", $"'{value}'");
    }

    private string? _dtype;
    private string? _variant;
    private string? _weightCacheDirectory;

    /// <summary>Where the model logs (provider choice and fallback reasons). Default: no logging.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }
}
