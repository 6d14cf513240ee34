using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// What a loaded model is made of at run time, below the public facade: the graph on ONNX Runtime, what it is
/// (<see cref="ModelInfo"/>), its tokenizer, the sessions and runs that use the graph (so that disposing waits for them) and
/// the continuous-batching scheduler. Sessions, the scheduler, generation, beam search and scoring take this, never
/// <see cref="LanguageModel"/>: the facade sits on top and checks the caller's arguments; everything under it runs here.
/// </summary>
internal sealed class ModelRuntime : IDisposable
{
    private readonly TextTokenizer? _tokenizer;
    private readonly string _folder;

    /// <summary>The folder holding the model's own files (for a GenAI hub folder, the chosen variant's).</summary>
    public string Folder => _folder;
    private readonly Lazy<BatchScheduler?> _scheduler;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<GenerationSession, byte> _sessions = new();
    private volatile bool _disposed;
    private int _runs;

    private ModelRuntime(string folder, DecoderGraph graph, ModelInfo info, TextTokenizer? tokenizer, int maxBatchSize, int prefillChunkSize, ILogger logger)
    {
        _folder = folder;
        Graph = graph;
        Info = info;
        _tokenizer = tokenizer;
        _scheduler = new(() => CreateScheduler(maxBatchSize, prefillChunkSize, logger), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The graph on its ONNX Runtime session.</summary>
    public DecoderGraph Graph { get; }

    /// <summary>What the model is and where it runs.</summary>
    public ModelInfo Info { get; }

    /// <summary>Whether the folder has tokenizer files.</summary>
    public bool HasTokenizer => _tokenizer is not null;

    /// <summary>The tokenizer.</summary>
    /// <exception cref="ModelFormatException">The model folder has no tokenizer files.</exception>
    public TextTokenizer Tokenizer => _tokenizer ?? throw new ModelFormatException(
        $"Model folder '{_folder}' has no tokenizer (tokenizer.json, tokenizer.model or vocab.json + merges.txt); use the token-id overloads.", _folder);

    /// <summary>The continuous-batching scheduler, or null when batching is off or the graph cannot batch (started on first use).</summary>
    public BatchScheduler? Scheduler => _scheduler.Value;

    /// <summary>Loads the folder's graph, configuration and tokenizer.</summary>
    public static ModelRuntime Load(string path, LanguageModelOptions options, ILogger logger)
    {
        var config = ModelConfig.Load(path, options);
        var folder = config.Folder; // a GenAI hub folder's chosen variant holds the tokenizer and template
        var graph = DecoderGraph.Create(config, options, logger);
        try
        {
            var sig = graph.Signature;
            var vocab = sig.VocabularySize ?? throw new ModelFormatException(
                $"The vocabulary size is neither a fixed dimension of '{sig.Logits}' nor stated in {config.ConfigFile}.", config.ConfigFile);
            var heads = config.AttentionHeadCount ?? sig.KeyValueHeadCount;
            var (weightType, sharesCache, readsLengths) = ReadGraphFacts(config.GraphFile, sig, logger);
            graph.SharesCacheBuffer = sharesCache && graph.CacheOnCpu && options.ShareCacheBuffer;
            graph.AttentionReadsLengths = readsLengths;
            var tokenizer = TextTokenizer.HasTokenizerFile(folder)
                ? TextTokenizer.FromFolder(folder, new TokenizerOptions
                {
                    BosTokenId = config.BosTokenId,
                    EosTokenIds = config.EosTokenIds.Count > 0 ? config.EosTokenIds : null,
                    PadTokenId = config.PadTokenId,
                })
                : null;
            if (tokenizer is null)
            {
                logger.LogWarning("Model folder {Folder} has no tokenizer files; only token-id APIs can be used.", folder);
            }
            else if (tokenizer.VocabularySize > vocab)
            {
                logger.LogWarning("The tokenizer of {Folder} has {TokenizerSize} tokens but the model's vocabulary has {Size}: ids {First}..{Last} ({Count} tokens) can be encoded but never generated or scored.",
                    folder, tokenizer.VocabularySize, vocab, vocab, tokenizer.VocabularySize - 1, tokenizer.VocabularySize - vocab);
            }

            var info = new ModelInfo
            {
                Architecture = config.ModelType,
                FolderLayout = config.FolderLayout,
                Dtype = config.Dtype,
                Variant = config.Variant,
                ExtraInputs = sig.ExtraInputs,
                GraphPath = config.GraphFile,
                LayerCount = sig.LayerCount,
                AttentionHeadCount = heads,
                KeyValueHeadCount = sig.KeyValueHeadCount,
                HeadSize = sig.HeadSize,
                HiddenSize = config.HiddenSize ?? heads * sig.HeadSize,
                VocabularySize = vocab,
                ContextLength = config.ContextLength ?? config.Search.MaxLength ?? int.MaxValue,
                KvCacheLayout = sig.Layout == OnnxLM.KvCacheLayout.Combined ? "combined" : "separate",
                KvCacheDataType = sig.KvType == TensorElementType.Float16 ? "float16" : "float32",
                HasPositionIds = sig.PositionIds is not null,
                HasAttentionMask = sig.AttentionMask is not null,
                WeightType = weightType,
                GraphInputs = graph.Session.InputMetadata,
                GraphOutputs = graph.Session.OutputMetadata,
                BosTokenId = config.BosTokenId,
                EosTokenIds = config.EosTokenIds,
                PadTokenId = config.PadTokenId,
                ExecutionProvider = graph.Provider,
                TokenizerVocabularySize = tokenizer is not null && tokenizer.VocabularySize > vocab ? tokenizer.VocabularySize : null,
            };

            logger.LogInformation("Loaded {Graph}: {Info}", config.GraphFile, info);
            return new ModelRuntime(folder, graph, info, tokenizer, options.MaxBatchSize, options.PrefillChunkSize, logger);
        }
        catch
        {
            graph.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The weights' storage type, whether the attention lets past and present share one buffer and whether it reads row
    /// lengths (GroupQueryAttention), read from the graph file.
    /// </summary>
    private static (string WeightType, bool SharesCacheBuffer, bool ReadsLengths) ReadGraphFacts(string graphFile, GraphSignature sig, ILogger logger)
    {
        try
        {
            var file = OnnxModelFile.Read(graphFile);
            return (file.WeightType(), file.AttentionSharesCacheBuffer(sig.PastNames, sig.PresentNames), file.Nodes.Any(n => n.OpType == "GroupQueryAttention"));
        }
        catch (Exception e) when (e is ModelFormatException or IOException)
        {
            // ONNX Runtime loaded the graph, so this is a reader limitation, not a broken model: say so and go on.
            logger.LogDebug(e, "Could not read the weight types of {Graph}.", graphFile);
            return ("unknown", false, false);
        }
    }

    private BatchScheduler? CreateScheduler(int maxBatchSize, int prefillChunkSize, ILogger logger)
    {
        if (maxBatchSize <= 1) return null;
        if (!Graph.UseHostCache)
        {
            // The batched cache is gathered and compacted on the host, and a lone request's session cache moves into it
            // from host memory; on CUDA every step would copy it both ways.
            logger.LogInformation("Continuous batching runs on the CPU provider only so far; on {Provider} concurrent generations decode alone.", Graph.Provider);
            return null;
        }

        if (BatchedCache.IsSupported(Graph, Info.GraphPath)) return new BatchScheduler(this, maxBatchSize, prefillChunkSize, logger);
        logger.LogInformation("{Graph} cannot decode sequences of different lengths in one batch; concurrent generations run alone.", Info.GraphPath);
        return null;
    }

    /// <summary>An empty session of up to <paramref name="maxLength"/> tokens (the caller has checked it against the context).</summary>
    public GenerationSession CreateSession(int maxLength)
    {
        ThrowIfDisposed();
        return new GenerationSession(this, maxLength);
    }

    /// <summary>
    /// Encodes prompt text for the model (<see cref="TextTokenizer.EncodeForModel"/>) after refusing, without tokenizing,
    /// text too long to fit in the context (<see cref="CheckTextFits"/>).
    /// </summary>
    public int[] EncodeText(string text, bool? addBos, string what, CancellationToken cancellationToken = default)
    {
        CheckTextFits(text.Length, what);
        return Tokenizer.EncodeForModel(text, addBos, cancellationToken);
    }

    /// <summary>
    /// The most characters of text that can still fit in the context: the context length × the longest vocabulary piece
    /// (no token stands for more characters than its piece has) × 4, a margin for normalizers that shrink text (NFC,
    /// collapsed whitespace) and unknown-character runs. Longer text is refused before tokenizing, so that a huge
    /// prompt costs a length check, not the memory and time of tokenizing it.
    /// </summary>
    public long MaxTextLength => (long)Info.ContextLength * Tokenizer.LongestPieceLength * 4;

    /// <summary>Throws <see cref="ContextLengthExceededException"/> when text of <paramref name="characters"/> cannot fit in the context.</summary>
    public void CheckTextFits(long characters, string what)
    {
        var limit = MaxTextLength;
        if (characters <= limit) return;
        var atLeast = (int)Math.Min(int.MaxValue, characters / (Tokenizer.LongestPieceLength * 4L));
        throw new ContextLengthExceededException(atLeast, Info.ContextLength,
            $"The {what} has {characters} characters, more than the {limit} that can fit in the model's context of {Info.ContextLength} tokens " +
            $"(at most {Tokenizer.LongestPieceLength} characters a token, with a margin of 4); it was refused before tokenizing.");
    }

    /// <summary>Throws <see cref="ObjectDisposedException"/> (naming <see cref="LanguageModel"/>, what the caller holds) once disposed.</summary>
    public void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(LanguageModel));
    }

    public void Register(GenerationSession session) => _sessions.TryAdd(session, 0);

    public void Unregister(GenerationSession session) => _sessions.TryRemove(session, out _);

    /// <summary>Counts a run on the graph outside any session (batched scoring), so that Dispose waits for it.</summary>
    public RunScope EnterRun()
    {
        Interlocked.Increment(ref _runs);
        if (_disposed)
        {
            Interlocked.Decrement(ref _runs);
            throw new ObjectDisposedException(nameof(LanguageModel));
        }

        return new RunScope(this);
    }

    internal readonly struct RunScope(ModelRuntime runtime) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref runtime._runs);
    }

    /// <summary>
    /// Stops the scheduler, disposes every session (a run in flight is stopped and finishes first), waits for runs outside
    /// sessions, then frees the graph. Safe from any thread at any time; later calls throw <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_scheduler.IsValueCreated) _scheduler.Value?.Dispose();
        foreach (var session in _sessions.Keys) session.Dispose();
        var spin = new SpinWait();
        while (Volatile.Read(ref _runs) != 0) spin.SpinOnce(sleep1Threshold: 20);
        Graph.Dispose();
    }
}
