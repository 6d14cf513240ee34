using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OnnxLM.Chat;

namespace OnnxLM.Hosting;

/// <summary>
/// One hosted model: loads it once (at host start or on first use), owns it and everything requests share — the
/// request queue, the cached conversations, the instruments — and disposes them with the container.
/// </summary>
/// <remarks>
/// <c>AddOnnxLM</c> registers one per model, keyed by the model's service key. Resolve it to serve the model from your
/// own endpoints the way <see cref="OnnxLMChatClient"/> does: <see cref="EnterQueueAsync"/> around each generation, then
/// <see cref="RecordUsage"/>. The container owns it; do not dispose it yourself.
/// </remarks>
public sealed class OnnxLMModelHost : IDisposable
{
    private readonly Lazy<LanguageModel> _model;
    private readonly Lazy<ChatTemplate> _template;
    private readonly ILoggerFactory? _loggerFactory;
    private bool _disposed;

    internal OnnxLMModelHost(OnnxLMOptions options, ILoggerFactory? loggerFactory, IMeterFactory? meterFactory)
    {
        Options = options;
        _loggerFactory = loggerFactory;
        Logger = loggerFactory?.CreateLogger("OnnxLM.Hosting") ?? NullLogger.Instance;
        ModelPath = Path.GetFullPath(options.ModelPath!);
        ModelId = options.ModelId ?? Path.GetFileName(ModelPath.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        Queue = new RequestQueue(options.MaxConcurrentSequences, options.MaxQueueLength, ModelId);
        Sessions = new SessionPool(options.CachedConversations);
        Tags = [new("gen_ai.provider.name", "onnxlm"), new("gen_ai.request.model", ModelId)];
        Instruments = new OnnxLMInstruments(meterFactory, () => Queue.Waiting, Tags);
        _model = new Lazy<LanguageModel>(Load, LazyThreadSafetyMode.ExecutionAndPublication);
        _template = new Lazy<ChatTemplate>(() => options.ChatTemplatePath is { } path
            ? ChatTemplate.Create(File.ReadAllText(path), Model.ChatTemplate.SpecialTokens)
            : Model.ChatTemplate, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The options the model was registered with.</summary>
    public OnnxLMOptions Options { get; }

    /// <summary>The model's name in telemetry and errors: <see cref="OnnxLMOptions.ModelId"/>, else the model folder's name.</summary>
    public string ModelId { get; }

    internal string ModelPath { get; }

    internal ILogger Logger { get; }

    internal RequestQueue Queue { get; }

    /// <summary>Requests decoding now: the rows of the model's batch (at most <see cref="OnnxLMOptions.MaxConcurrentSequences"/>).</summary>
    public int RunningRequests => Queue.Running;

    /// <summary>Requests waiting in the queue for a sequence slot (at most <see cref="OnnxLMOptions.MaxQueueLength"/>).</summary>
    public int WaitingRequests => Queue.Waiting;

    internal SessionPool Sessions { get; }

    internal OnnxLMInstruments Instruments { get; }

    internal KeyValuePair<string, object?>[] Tags { get; }

    /// <summary>The model, loaded on first use. A failed load is not retried: every use reports the same error.</summary>
    /// <exception cref="ObjectDisposedException">The container has disposed the host.</exception>
    public LanguageModel Model
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _model.Value;
        }
    }

    /// <summary>Whether <see cref="Model"/> has been loaded (a model that loads eagerly is still loading while this is false).</summary>
    public bool IsLoaded => _model.IsValueCreated;

    internal ChatTemplate ChatTemplate => _template.Value;

    /// <summary>
    /// Waits for one of the model's sequence slots (<see cref="OnnxLMOptions.MaxConcurrentSequences"/>), first in, first
    /// out, behind at most <see cref="OnnxLMOptions.MaxQueueLength"/> waiting requests. Dispose the result to free the slot.
    /// </summary>
    /// <param name="cancellationToken">Leaves the queue while waiting.</param>
    /// <exception cref="OnnxLMQueueFullException">The queue is full: try again later.</exception>
    public async ValueTask<IDisposable> EnterQueueAsync(CancellationToken cancellationToken = default) =>
        await Queue.EnterAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Records one request in the model's OpenTelemetry GenAI metrics (<see cref="OnnxLMTelemetry"/>): input and output
    /// token usage and the operation's duration, tagged with the model and <paramref name="operationName"/>.
    /// </summary>
    /// <param name="operationName">The <c>gen_ai.operation.name</c>: <c>chat</c>, <c>text_completion</c>, …</param>
    /// <param name="inputTokens">Tokens of the prompt.</param>
    /// <param name="outputTokens">Tokens generated.</param>
    /// <param name="duration">How long the request took.</param>
    public void RecordUsage(string operationName, long inputTokens, long outputTokens, TimeSpan duration)
    {
        ArgumentException.ThrowIfNullOrEmpty(operationName);
        KeyValuePair<string, object?>[] Tagged(string? tokenType) =>
            [.. Tags, new("gen_ai.operation.name", operationName), .. tokenType is null ? Array.Empty<KeyValuePair<string, object?>>() : [new("gen_ai.token.type", tokenType)]];
        Instruments.Tokens.Record(inputTokens, Tagged("input"));
        Instruments.Tokens.Record(outputTokens, Tagged("output"));
        Instruments.Duration.Record(duration.TotalSeconds, Tagged(null));
    }

    private LanguageModel Load()
    {
        Log.Loading(Logger, ModelId, ModelPath, Options.ExecutionProvider);
        var clock = Stopwatch.StartNew();
        try
        {
            var model = LanguageModel.Load(ModelPath, new LanguageModelOptions
            {
                ExecutionProvider = Options.ExecutionProvider,
                DeviceId = Options.DeviceId,
                Dtype = Options.Dtype,
                Variant = Options.Variant,
                WeightCacheDirectory = Options.WeightCacheDirectory,
                IntraOpThreadCount = Options.IntraOpThreadCount ?? 0,
                // The sequences the queue admits at once decode as rows of one batch (1: each alone, in turn).
                MaxBatchSize = Math.Min(Options.MaxConcurrentSequences, 256),
                LoggerFactory = _loggerFactory,
            });
            Log.Loaded(Logger, ModelId, clock.Elapsed.TotalMilliseconds, model.Info.ExecutionProvider, model.Info);
            return model;
        }
        catch (Exception e)
        {
            Log.LoadFailed(Logger, e, ModelId, ModelPath);
            throw;
        }
    }

    /// <summary>At host start: load (and warm up) when the options say so, off the caller's thread.</summary>
    internal Task StartAsync(CancellationToken cancellationToken) => !Options.LoadEagerly && !Options.WarmUp
        ? Task.CompletedTask
        : Task.Run(async () =>
        {
            var model = Model;
            _ = ChatTemplate;
            if (Options.WarmUp)
            {
                var clock = Stopwatch.StartNew();
                var prompt = model.HasTokenizer ? model.Tokenizer.Encode("Hello") : [0];
                if (prompt.Length == 0) prompt = [model.Tokenizer.BosTokenId ?? 0];
                await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 4, Temperature = 0 }, cancellationToken).ConfigureAwait(false);
                Log.WarmedUp(Logger, ModelId, clock.Elapsed.TotalMilliseconds);
            }
        }, cancellationToken);

    /// <summary>Disposes the model, the cached conversations and the instruments (the container calls it).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Sessions.Dispose();
        Instruments.Dispose();
        if (_model.IsValueCreated) _model.Value.Dispose();
    }
}
