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
internal sealed class OnnxLMModelHost : IDisposable
{
    private readonly Lazy<LanguageModel> _model;
    private readonly Lazy<ChatTemplate> _template;
    private readonly ILoggerFactory? _loggerFactory;
    private bool _disposed;

    public OnnxLMModelHost(OnnxLMOptions options, ILoggerFactory? loggerFactory, IMeterFactory? meterFactory)
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

    public OnnxLMOptions Options { get; }

    public string ModelId { get; }

    public string ModelPath { get; }

    public ILogger Logger { get; }

    public RequestQueue Queue { get; }

    public SessionPool Sessions { get; }

    public OnnxLMInstruments Instruments { get; }

    public KeyValuePair<string, object?>[] Tags { get; }

    /// <summary>The model, loaded on first use. A failed load is not retried: every use reports the same error.</summary>
    public LanguageModel Model
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _model.Value;
        }
    }

    public bool IsLoaded => _model.IsValueCreated;

    public ChatTemplate ChatTemplate => _template.Value;

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
    public Task StartAsync(CancellationToken cancellationToken) => !Options.LoadEagerly && !Options.WarmUp
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

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Sessions.Dispose();
        Instruments.Dispose();
        if (_model.IsValueCreated) _model.Value.Dispose();
    }
}
