using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// The loaded ONNX decoder: one <see cref="InferenceSession"/> (thread-safe for concurrent runs), the matched
/// graph signature and where cache tensors live. Sessions of <see cref="GenerationSession"/> share it.
/// </summary>
internal sealed class DecoderGraph : IDisposable
{
    private DecoderGraph(InferenceSession session, GraphSignature signature, ExecutionProvider provider, OrtMemoryInfo cacheMemory, int deviceId)
    {
        DeviceId = deviceId;
        UseHostCache = provider == ExecutionProvider.Cpu;
        Session = session;
        Signature = signature;
        Provider = provider;
        CacheMemory = cacheMemory;
        InputIdsName = new NativeName(signature.InputIds);
        MaskName = signature.AttentionMask is { } mask ? new NativeName(mask) : null;
        PositionsName = signature.PositionIds is { } positions ? new NativeName(positions) : null;
        UseCacheBranchName = signature.UseCacheBranch is { } branch ? new NativeName(branch) : null;
        LogitsToKeepName = signature.LogitsToKeep is { } keep ? new NativeName(keep) : null;
        CachePositionName = signature.CachePosition is { } cachePosition ? new NativeName(cachePosition) : null;
        TokenTypeIdsName = signature.TokenTypeIds is { } tokenTypes ? new NativeName(tokenTypes) : null;
        LogitsName = new NativeName(signature.Logits);
        PastNames = signature.PastNames.Select(n => new NativeName(n)).ToArray();
        PresentNames = signature.PresentNames.Select(n => new NativeName(n)).ToArray();
    }

    // The graph's input and output names, encoded once for OrtNative's binding calls.
    public NativeName InputIdsName { get; }
    public NativeName? MaskName { get; }
    public NativeName? PositionsName { get; }
    public NativeName? UseCacheBranchName { get; }
    public NativeName? LogitsToKeepName { get; }
    public NativeName? CachePositionName { get; }
    public NativeName? TokenTypeIdsName { get; }
    public NativeName LogitsName { get; }
    public NativeName[] PastNames { get; }
    public NativeName[] PresentNames { get; }

    /// <summary>
    /// Whether every attention reads its past and writes its present as graph input and output of one
    /// <c>GroupQueryAttention</c> node, so a session can bind one buffer as both (see <see cref="HostKvCache"/>).
    /// </summary>
    public bool SharesCacheBuffer { get; set; }

    /// <summary>
    /// Whether attention is <c>GroupQueryAttention</c>, which reads each row's length from the mask (its count of ones)
    /// rather than which columns are masked: a batch keeps each row's cache from column 0 (see <see cref="BatchedCache"/>).
    /// </summary>
    public bool AttentionReadsLengths { get; set; }

    private readonly object _lazyLock = new(); // guards what is created on first use: the mask of ones, the slicers
    private readonly List<NativeBuffer> _ones = [];
    private NativeBuffer? _currentOnes;

    /// <summary>
    /// An attention mask of ones (the graph's mask type) at least <paramref name="length"/> long, shared by every session:
    /// a mask <c>[1, n]</c> is a view of its start. It only grows; earlier buffers stay alive until the graph is disposed
    /// because runs in flight may still read them.
    /// </summary>
    public NativeBuffer MaskOnes(int length)
    {
        var size = GraphRun.IntegerSize(Signature.MaskType);
        var current = Volatile.Read(ref _currentOnes);
        if (current is not null && current.Bytes >= (long)length * size) return current;
        lock (_lazyLock)
        {
            current = _currentOnes;
            if (current is not null && current.Bytes >= (long)length * size) return current;
            var count = Math.Max(length, Math.Max(256, (int)Math.Min(int.MaxValue, (current?.Bytes ?? 0) / size * 2)));
            var ones = new NativeBuffer((long)count * size);
            if (size == 8) MemoryMarshal.Cast<byte, long>(ones.AsSpan(0, count * 8)).Fill(1L);
            else MemoryMarshal.Cast<byte, int>(ones.AsSpan(0, count * 4)).Fill(1);
            _ones.Add(ones);
            Volatile.Write(ref _currentOnes, ones);
            return ones;
        }
    }

    public InferenceSession Session { get; }
    public GraphSignature Signature { get; }
    public ExecutionProvider Provider { get; }

    /// <summary>Where present outputs are bound: device memory on CUDA so the cache never leaves the GPU.</summary>
    public OrtMemoryInfo CacheMemory { get; }

    public bool CacheOnCpu => Provider == ExecutionProvider.Cpu;

    /// <summary>The CUDA device the session runs on (CUDA only).</summary>
    public int DeviceId { get; }

    /// <summary>
    /// Whether new sessions keep their cache in host buffers they own (<see cref="HostKvCache"/>, the CPU path) rather than
    /// as ONNX Runtime's output tensors in <see cref="CacheMemory"/> (the device path). Tests turn it off on the CPU to run
    /// the device path's code, which otherwise needs a GPU.
    /// </summary>
    public bool UseHostCache { get; set; }

    private DeviceSlicer? _cacheSlicer;
    private DeviceSlicer? _logitsSlicer;

    /// <summary>Copies cache prefixes where the cache lives, on the graph's own provider (device path); created on first use.</summary>
    public DeviceSlicer CacheSlicer => Slicer(ref _cacheSlicer, Signature.KvType, Signature.Layout == KvCacheLayout.Combined ? 5 : 4,
        Signature.Layout == KvCacheLayout.Combined ? 3 : 2, CacheMemory);

    /// <summary>Copies rows of device-resident logits [1, n, vocab] to the host (device path); created on first use.</summary>
    public DeviceSlicer LogitsSlicer => Slicer(ref _logitsSlicer, Signature.LogitsType, 3, 1, OrtMemoryInfo.DefaultInstance);

    private DeviceSlicer Slicer(ref DeviceSlicer? field, TensorElementType type, int rank, int axis, OrtMemoryInfo output)
    {
        if (Volatile.Read(ref field) is { } slicer) return slicer;
        lock (_lazyLock)
        {
            return field ??= new DeviceSlicer(type, rank, axis,
                Provider == ExecutionProvider.Cuda ? o => o.AppendExecutionProvider_CUDA(DeviceId) : _ => { }, output);
        }
    }

    /// <summary>
    /// Set when the graph turned out to accept only one new token at a time once a past is given (some exports build
    /// their mask for a single step): sessions then run several appended tokens one by one, with the same results.
    /// </summary>
    public bool SingleTokenWithPast { get; set; }

    /// <summary>Whether the session came from <see cref="LanguageModelOptions.WeightCacheDirectory"/>'s cache, wrote an entry there, or neither.</summary>
    public WeightCacheUse WeightCacheUse { get; private init; }

    /// <summary>Where the graph reports what it learns about itself (the single-token fallback).</summary>
    public Microsoft.Extensions.Logging.ILogger Logger { get; set; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>What an explicit CUDA request needs installed, appended to each reason it failed.</summary>
    private const string CudaNeeds = "; CUDA needs an NVIDIA GPU with its driver, CUDA 12.x and cuDNN 9.x installed (ONNX Runtime 1.31's CUDA provider)";

    public static DecoderGraph Create(ModelConfig config, LanguageModelOptions options, ILogger logger)
    {
        var graph = CreateUnlogged(config, options, logger);
        graph.Logger = logger;
        return graph;
    }

    private static DecoderGraph CreateUnlogged(ModelConfig config, LanguageModelOptions options, ILogger logger)
    {
        EnsureNativeRuntime();
        var provider = options.ExecutionProvider;
        if (provider == ExecutionProvider.Auto)
        {
            // ONNX Runtime logs a failed CUDA load as an error on stderr; in Auto mode that is expected, so it is quieted
            // and reported through the logger instead.
            var env = OrtEnv.Instance();
            var level = env.EnvLogLevel;
            env.EnvLogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
            try
            {
                return CreateWith(ExecutionProvider.Cuda, config, options, logger);
            }
            catch (ExecutionProviderUnavailableException e)
            {
                // Auto on a CPU-only install is the common case, not news: only ExecutionProvider.Cuda reports it (as an error).
                logger.LogDebug("CUDA is not usable ({Reason}); running on the CPU.", e.Message);
                provider = ExecutionProvider.Cpu;
            }
            finally
            {
                env.EnvLogLevel = level;
            }
        }

        if (config.ConfiguredProviders.Count > 0)
        {
            logger.LogDebug("{File} names provider(s) {Providers}; OnnxLM uses {Provider} as its options say.",
                config.ConfigFile, string.Join(", ", config.ConfiguredProviders), provider);
        }

        return CreateWith(provider, config, options, logger);
    }

    /// <summary>
    /// Puts the graph and the external data files it names through <see cref="ModelFile"/> before ONNX Runtime opens
    /// them, which it would do without those checks (a FIFO there blocks the load for ever).
    /// </summary>
    /// <returns>
    /// The full paths of the external data files (null when this reader cannot walk the graph), and whether the graph gives
    /// the logits count as an input with a default (an overridable initializer, as OnnxLM's converter writes it).
    /// </returns>
    private static (IReadOnlyList<string>? ExternalFiles, bool LogitsCountHasDefault) CheckGraphFiles(string graphFile)
    {
        ModelFile.Check(graphFile, ModelFile.MaxGraphBytes);
        OnnxModelFile file;
        try
        {
            file = OnnxModelFile.Read(graphFile);
        }
        catch (Exception e) when (e is ModelFormatException or IOException or InvalidDataException or ArgumentException or OverflowException)
        {
            return (null, false); // a graph this reader cannot walk: ONNX Runtime's own error will say what is wrong with it
        }

        var folder = Path.GetDirectoryName(Path.GetFullPath(graphFile))!;
        var externals = file.Initializers.Values.Select(i => i.ExternalFile).OfType<string>().Distinct(StringComparer.Ordinal)
            .Select(external => Path.Combine(folder, external)).ToList();
        foreach (var external in externals)
        {
            ModelFile.Check(external, ModelFile.Unlimited);
        }

        return (externals, GraphSignature.LogitsCountNames.Any(file.Initializers.ContainsKey));
    }

    private static DecoderGraph CreateWith(ExecutionProvider provider, ModelConfig config, LanguageModelOptions options, ILogger logger)
    {
        var (externalFiles, logitsCountHasDefault) = CheckGraphFiles(config.GraphFile);

        // OnnxLM's own settings; the weight cache creates its sessions from these alone (it is off with ConfigureSessionOptions).
        SessionOptions NewSessionOptions()
        {
            var created = new SessionOptions();
            if (options.IntraOpThreadCount > 0)
            {
                created.IntraOpNumThreads = options.IntraOpThreadCount;
            }

            foreach (var (key, value) in config.SessionConfigEntries)
            {
                created.AddSessionConfigEntry(key, value);
            }

            if (logitsCountHasDefault)
            {
                // ONNX Runtime warns, at every load, that an initializer which is also an input is not folded as a constant:
                // that is the point of an input with a default, so the warning is noise for every user of such a graph.
                created.LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR;
            }

            return created;
        }

        using var sessionOptions = NewSessionOptions();

        OrtMemoryInfo cacheMemory = OrtMemoryInfo.DefaultInstance;
        if (provider == ExecutionProvider.Cuda)
        {
            if (!OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider"))
            {
                throw new ExecutionProviderUnavailableException(
                    "the ONNX Runtime native package in use has no CUDA execution provider: reference Microsoft.ML.OnnxRuntime.Gpu "
                    + "in place of Microsoft.ML.OnnxRuntime" + CudaNeeds);
            }

            try
            {
                sessionOptions.AppendExecutionProvider_CUDA(options.DeviceId);
            }
            catch (OnnxRuntimeException e)
            {
                throw new ExecutionProviderUnavailableException($"CUDA device {options.DeviceId} could not be initialised ({e.Message})" + CudaNeeds, e);
            }

            cacheMemory = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, options.DeviceId, OrtMemType.Default);
        }

        options.ConfigureSessionOptions?.Invoke(sessionOptions);

        var cache = WeightCache.For(provider, config.GraphFile, externalFiles, options, config.SessionConfigEntries, logger);
        var cacheUse = WeightCacheUse.Off;
        InferenceSession session;
        try
        {
            if (cache is null) session = new InferenceSession(config.GraphFile, sessionOptions);
            else (session, cacheUse) = cache.Open(NewSessionOptions, s => GraphSignature.Inspect(FedInputs(s), s.OutputMetadata, config));
        }
        catch (OnnxRuntimeException e) when (provider == ExecutionProvider.Cuda && e.Message.Contains("CUDA", StringComparison.OrdinalIgnoreCase))
        {
            throw new ExecutionProviderUnavailableException($"the CUDA session could not be created ({e.Message})" + CudaNeeds, e);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelFormatException($"ONNX Runtime could not load '{config.GraphFile}': {e.Message}", config.GraphFile, e);
        }

        try
        {
            var signature = GraphSignature.Inspect(FedInputs(session), session.OutputMetadata, config);
            return new DecoderGraph(session, signature, provider, cacheMemory, options.DeviceId) { WeightCacheUse = cacheUse };
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The graph's inputs, plus the logits count when a graph gives it as an overridable initializer (an input with a default,
    /// as OnnxLM's converter writes it so that runtimes that do not feed it see a graph without it): it may be fed all the same.
    /// </summary>
    private static IReadOnlyDictionary<string, NodeMetadata> FedInputs(InferenceSession session)
    {
        var defaults = session.OverridableInitializerMetadata;
        if (!GraphSignature.LogitsCountNames.Any(defaults.ContainsKey)) return session.InputMetadata;
        var inputs = new Dictionary<string, NodeMetadata>(session.InputMetadata, StringComparer.Ordinal);
        foreach (var name in GraphSignature.LogitsCountNames.Where(defaults.ContainsKey)) inputs.TryAdd(name, defaults[name]);
        return inputs;
    }

    /// <summary>
    /// Whether the CUDA provider can be set up for <paramref name="deviceId"/> here (the native package has it and its
    /// libraries load), without creating a session: what <see cref="ExecutionProvider.Auto"/> will most likely run on, for
    /// choosing a dtype or variant before the graph is loaded. ONNX Runtime's own error output is quieted meanwhile.
    /// </summary>
    internal static bool CudaUsable(int deviceId)
    {
        try
        {
            var env = OrtEnv.Instance();
            if (!env.GetAvailableProviders().Contains("CUDAExecutionProvider")) return false;
            var level = env.EnvLogLevel;
            env.EnvLogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
            try
            {
                using var probe = new SessionOptions();
                probe.AppendExecutionProvider_CUDA(deviceId);
                return true;
            }
            finally
            {
                env.EnvLogLevel = level;
            }
        }
        catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    private static void EnsureNativeRuntime()
    {
        try
        {
            _ = OrtEnv.Instance();
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            throw new OnnxLMException(
                "The ONNX Runtime native library could not be loaded. The OnnxLM package references only the managed API; " +
                "the application must reference a native package: Microsoft.ML.OnnxRuntime.Gpu (CUDA, falls back to CPU) or Microsoft.ML.OnnxRuntime (CPU).", e);
        }
    }

    public TensorElementType KvType => Signature.KvType;

    public void Dispose()
    {
        Session.Dispose();
        _cacheSlicer?.Dispose();
        _logitsSlicer?.Dispose();
        foreach (var name in (NativeName?[])[InputIdsName, MaskName, PositionsName, UseCacheBranchName, LogitsToKeepName, CachePositionName, TokenTypeIdsName, LogitsName, .. PastNames, .. PresentNames]) name?.Dispose();
        lock (_lazyLock)
        {
            foreach (var ones in _ones) ones.Dispose();
            _ones.Clear();
        }

        if (!ReferenceEquals(CacheMemory, OrtMemoryInfo.DefaultInstance)) CacheMemory.Dispose(); // the CUDA one is ours
    }
}
