using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace OnnxLM;

/// <summary>How the decoder session came to be with respect to <see cref="LanguageModelOptions.WeightCacheDirectory"/>.</summary>
internal enum WeightCacheUse
{
    /// <summary>No cache: none configured, another provider than the CPU, <c>ConfigureSessionOptions</c> given, or the cache folder unusable.</summary>
    Off,

    /// <summary>Loaded from a complete entry: the prepacked weights are mapped from its data file.</summary>
    Hit,

    /// <summary>No usable entry: loaded from the original graph and a new entry was written.</summary>
    Saved,

    /// <summary>No usable entry: loaded from the original graph, but writing the entry failed (nothing was left behind).</summary>
    SaveFailed,

    /// <summary>
    /// Loaded from the original graph because the saved graph did not reproduce it (now or at an earlier load, which left
    /// <c>&lt;key&gt;.rejected</c> saying why): ONNX Runtime 1.31 saves the prepacked weights of some graphs wrongly.
    /// </summary>
    Rejected,
}

/// <summary>
/// The prepacked-weights cache behind <see cref="LanguageModelOptions.WeightCacheDirectory"/>. ONNX Runtime's CPU provider
/// repacks block-quantized (MatMulNBits) weights into its kernels' layout at every session creation, on the private heap;
/// it can instead save the optimized graph with the packed weights in an external data file, which a later session maps
/// (file-backed pages, shared between processes and reclaimable). An entry is <c>&lt;dir&gt;/&lt;key&gt;/</c> holding
/// <c>model.onnx</c>, <c>model.onnx.data</c> and, written last as the completeness marker, <c>entry.json</c>.
/// </summary>
/// <remarks>
/// The key hashes everything the saved graph depends on: ONNX Runtime's version, the processor (its model name and feature
/// flags from <c>/proc/cpuinfo</c> on Linux; on other systems only the architecture and core count, a weaker key), the
/// graph's full path, the length and last-write time of the graph and of each external data file it names, the intra-op
/// thread count and the session config entries. The saved graph "may contain hardware specific optimizations", as ONNX
/// Runtime warns, so an entry is never shared across any of these. A failing cache never fails a load: it falls back to
/// loading the original graph.
/// </remarks>
internal sealed class WeightCache
{
    internal const string GraphName = "model.onnx";
    internal const string DataName = "model.onnx.data";
    internal const string MarkerName = "entry.json";

    // Bumped when what an entry holds or how it is keyed changes, so older entries are never read.
    private const string Format = "onnxlm-weight-cache-1";

    private readonly string _root;
    private readonly string _graphFile;
    private readonly ILogger _logger;

    private WeightCache(string root, string key, string graphFile, ILogger logger)
    {
        _root = root;
        Key = key;
        _graphFile = graphFile;
        _logger = logger;
    }

    /// <summary>The entry's key: the first 20 hex digits of the SHA-256 of what the saved graph depends on.</summary>
    public string Key { get; }

    /// <summary>The entry's folder.</summary>
    public string EntryFolder => Path.Combine(_root, Key);

    /// <summary>
    /// The cache for this load, or null when there is none: no folder configured, a provider other than the CPU (the CUDA
    /// provider does not prepack this way), or <see cref="LanguageModelOptions.ConfigureSessionOptions"/> given (what it
    /// does to the session cannot be keyed), or <paramref name="externalFiles"/> (the full paths of the external data files
    /// the graph names) null because the graph could not be read.
    /// </summary>
    public static WeightCache? For(ExecutionProvider provider, string graphFile, IReadOnlyList<string>? externalFiles, LanguageModelOptions options,
        IEnumerable<KeyValuePair<string, string>> configEntries, ILogger logger)
    {
        if (options.WeightCacheDirectory is not { } root || options.ConfigureSessionOptions is not null || externalFiles is null) return null;
        var key = ComputeKey(provider, graphFile, externalFiles, options.IntraOpThreadCount, configEntries);
        return key is null ? null : new WeightCache(Path.GetFullPath(root), key, graphFile, logger);
    }

    /// <summary>
    /// The key for a load, or null for a provider other than the CPU. Throws nothing for missing files: a file that cannot
    /// be read is keyed as absent, and the load itself reports it.
    /// </summary>
    internal static string? ComputeKey(ExecutionProvider provider, string graphFile, IReadOnlyList<string> externalFiles, int threads,
        IEnumerable<KeyValuePair<string, string>> configEntries)
    {
        if (provider != ExecutionProvider.Cpu) return null;
        var text = new StringBuilder();
        void Line(string name, string? value) => text.Append(name).Append('=').Append(value).Append('\n');
        Line("format", Format);
        Line("onnxruntime", OrtEnv.Instance().GetVersionString());
        Line("processor", ProcessorIdentity());
        var graph = Path.GetFullPath(graphFile);
        Line("graph", graph);
        foreach (var file in externalFiles.Prepend(graph))
        {
            var info = new FileInfo(file);
            Line("file", info.Exists
                ? string.Create(CultureInfo.InvariantCulture, $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}")
                : info.FullName + "|absent");
        }

        Line("threads", threads.ToString(CultureInfo.InvariantCulture));
        foreach (var (name, value) in configEntries.OrderBy(e => e.Key, StringComparer.Ordinal)) Line("config", name + "|" + value);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()));
        return Convert.ToHexStringLower(hash)[..20];
    }

    /// <summary>
    /// What identifies the processor the packed layout was chosen for: on Linux the model name and feature flags of the first
    /// processor in <c>/proc/cpuinfo</c> (x86's <c>model name</c>/<c>flags</c>, ARM's <c>CPU implementer</c>/<c>CPU part</c>/<c>Features</c>);
    /// elsewhere only the architecture and the core count.
    /// </summary>
    internal static string ProcessorIdentity()
    {
        var identity = new StringBuilder(RuntimeInformation.ProcessArchitecture.ToString());
        string[] lines;
        try
        {
            lines = OperatingSystem.IsLinux() ? File.ReadAllLines("/proc/cpuinfo") : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            lines = [];
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0) continue;
            var name = line[..colon].Trim();
            if (name is "vendor_id" or "model name" or "flags" or "CPU implementer" or "CPU architecture" or "CPU part" or "Features" && seen.Add(name))
            {
                identity.Append('|').Append(name).Append(':').Append(line[(colon + 1)..].Trim());
            }
        }

        if (seen.Count == 0) identity.Append('|').Append(Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture));
        return identity.ToString();
    }

    /// <summary>The file that records that this key's saved graph did not reproduce the original, so no entry is written again.</summary>
    public string RejectedMarker => Path.Combine(_root, Key + ".rejected");

    /// <summary>
    /// The decoder session: from the entry when there is a usable one; otherwise from the original graph, writing the entry
    /// (and then running from it) unless an earlier load found that this graph's saved weights do not reproduce it.
    /// </summary>
    /// <param name="sessionOptions">Creates OnnxLM's session options (each session takes a new object, owned by the callee).</param>
    /// <param name="inspect">Reads the graph's signature from a session (which inputs are the cache, the mask, the logits) for the check.</param>
    public (InferenceSession Session, WeightCacheUse Use) Open(Func<SessionOptions> sessionOptions, Func<InferenceSession, GraphSignature> inspect)
    {
        if (TryOpen(sessionOptions) is { } hit)
        {
            MarkUsed(EntryFolder);
            _logger.LogInformation("Prepacked weights of {Graph} mapped from the weight cache entry {Entry}.", _graphFile, EntryFolder);
            return (hit, WeightCacheUse.Hit);
        }
        if (File.Exists(RejectedMarker))
        {
            _logger.LogDebug("{Marker} says the saved graph of {Graph} does not reproduce it; loading without the weight cache.", RejectedMarker, _graphFile);
            using var plain = sessionOptions();
            return (new InferenceSession(_graphFile, plain), WeightCacheUse.Rejected);
        }

        return CreateAndSave(sessionOptions, inspect);
    }

    /// <summary>
    /// The session from a complete entry, or null when there is none or it is unusable (then deleted, with a warning, so the
    /// caller's save replaces it).
    /// </summary>
    private InferenceSession? TryOpen(Func<SessionOptions> sessionOptions)
    {
        var entry = EntryFolder;
        if (!File.Exists(Path.Combine(entry, MarkerName))) return null;
        string? problem;
        try
        {
            problem = CheckEntry(entry);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            problem = e.Message;
        }

        if (problem is null)
        {
            using var options = sessionOptions();
            try
            {
                return new InferenceSession(Path.Combine(entry, GraphName), options);
            }
            catch (OnnxRuntimeException e)
            {
                problem = e.Message;
            }
        }

        _logger.LogWarning("The weight cache entry {Entry} for {Graph} is unusable ({Problem}); it is deleted and written again.", entry, _graphFile, problem);
        Delete(entry);
        return null;
    }

    /// <summary>What is wrong with an entry whose marker exists, or null: every file it lists must have the length it recorded.</summary>
    private static string? CheckEntry(string entry)
    {
        using var marker = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(entry, MarkerName)));
        if (!marker.RootElement.TryGetProperty("files", out var files) || files.ValueKind != JsonValueKind.Object) return $"{MarkerName} lists no files";
        foreach (var file in files.EnumerateObject())
        {
            var info = new FileInfo(Path.Combine(entry, Path.GetFileName(file.Name)));
            if (!info.Exists) return $"{file.Name} is missing";
            if (file.Value.ValueKind != JsonValueKind.Number || info.Length != file.Value.GetInt64()) return $"{file.Name} has {info.Length} bytes, not the {file.Value} recorded";
        }

        return File.Exists(Path.Combine(entry, GraphName)) ? null : $"{GraphName} is missing";
    }

    /// <summary>
    /// Creates the session from the original graph, saving the optimized graph with its prepacked weights into a temporary
    /// folder, then opens the saved graph and checks that one step of it gives the original's logits before the folder
    /// becomes the entry; the saved graph's session is returned (its packed weights mapped, the original's heap freed). When
    /// the check fails the key is marked rejected and the original graph is loaded again; when the save fails the folder is
    /// deleted, and if a session failed because of the save the original graph is loaded once more without saving.
    /// </summary>
    private (InferenceSession Session, WeightCacheUse Use) CreateAndSave(Func<SessionOptions> sessionOptions, Func<InferenceSession, GraphSignature> inspect)
    {
        DeleteAbandoned();
        DeleteStale();
        var temp = Path.Combine(_root, $"{Key}.tmp-{Guid.NewGuid():N}");
        InferenceSession? session = null;
        InferenceSession? saved = null;
        try
        {
            Directory.CreateDirectory(temp);
            using (var options = sessionOptions())
            {
                options.OptimizedModelFilePath = Path.Combine(temp, GraphName);
                options.AddSessionConfigEntry("session.optimized_model_external_initializers_file_name", DataName);
                options.AddSessionConfigEntry("session.optimized_model_external_initializers_min_size_in_bytes", "1024");
                options.AddSessionConfigEntry("session.save_external_prepacked_constant_initializers", "1");
                session = new InferenceSession(_graphFile, options);
            }

            // The original's reference step, then its session goes (its packed weights are on the heap) before the saved
            // graph's opens, so a miss holds one copy of the weights at a time.
            var (expected, problem) = WeightCacheProbe.Run(session, inspect(session));
            session.Dispose();
            session = null;
            using (var options = sessionOptions()) saved = new InferenceSession(Path.Combine(temp, GraphName), options);
            var difference = problem ?? WeightCacheProbe.Compare(expected!, WeightCacheProbe.Run(saved, inspect(saved)).Logits ?? []);
            if (difference is not null)
            {
                saved.Dispose();
                saved = null;
                Delete(temp);
                _logger.LogWarning("The graph ONNX Runtime saved with prepacked weights for {Graph} does not reproduce it ({Difference}); the weight cache is not used for it (recorded in {Marker}).",
                    _graphFile, difference, RejectedMarker);
                File.WriteAllText(RejectedMarker, $"{difference}\nONNX Runtime {OrtEnv.Instance().GetVersionString()}, {DateTime.UtcNow:O}\n");
                using var original = sessionOptions();
                return (new InferenceSession(_graphFile, original), WeightCacheUse.Rejected);
            }

            WriteMarker(temp);
            if (Directory.Exists(EntryFolder) && !File.Exists(Path.Combine(EntryFolder, MarkerName))) Delete(EntryFolder); // left half-deleted
            try
            {
                Directory.Move(temp, EntryFolder);
            }
            catch (IOException) when (File.Exists(Path.Combine(EntryFolder, MarkerName)))
            {
                Delete(temp); // another load wrote the same entry first; the files stay mapped until this session ends
            }

            _logger.LogInformation("Prepacked weights of {Graph} saved to the weight cache entry {Entry} and mapped from there.", _graphFile, EntryFolder);
            return (saved, WeightCacheUse.Saved);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or OnnxRuntimeException)
        {
            saved?.Dispose();
            Delete(temp);
            _logger.LogWarning("The weight cache entry for {Graph} could not be written to {Folder} ({Problem}); the model is loaded without it.",
                _graphFile, _root, e.Message);
            if (session is not null) return (session, WeightCacheUse.SaveFailed);
        }
        catch
        {
            saved?.Dispose();
            session?.Dispose();
            Delete(temp);
            throw;
        }

        // The session failed while saving (a full disk, a folder it may not write): once more as a plain load, whose own
        // errors are the caller's to report.
        using var plain = sessionOptions();
        return (new InferenceSession(_graphFile, plain), WeightCacheUse.SaveFailed);
    }

    /// <summary>How long a temporary folder goes unwritten before it counts as a save that never finished (no save lasts an hour).</summary>
    internal static readonly TimeSpan AbandonedAfter = TimeSpan.FromHours(1);

    /// <summary>
    /// Deletes the temporary folders of saves that never finished (a process killed while saving leaves one, as large as an
    /// entry): those whose files were last written more than <see cref="AbandonedAfter"/> ago. A save in progress is newer.
    /// </summary>
    private void DeleteAbandoned()
    {
        try
        {
            foreach (var folder in Directory.EnumerateDirectories(_root, "*.tmp-*"))
            {
                var info = new DirectoryInfo(folder);
                var written = info.EnumerateFiles().Select(f => f.LastWriteTimeUtc).Append(info.LastWriteTimeUtc).Max();
                if (DateTime.UtcNow - written > AbandonedAfter) Delete(folder);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a folder that cannot be listed or deleted now is tried again at the next save.
        }
    }

    /// <summary>How long an entry may go unloaded before a save elsewhere in the folder deletes it (its source may be long gone).</summary>
    internal static readonly TimeSpan UnusedAfter = TimeSpan.FromDays(30);

    /// <summary>
    /// Deletes the entries no load will use again, so the folder does not grow with every changed model or runtime: those
    /// whose source graph is gone or has another length or last-write time than when they were saved (the model was
    /// converted again; its new entry has another key), and those not loaded for <see cref="UnusedAfter"/> (an upgraded
    /// ONNX Runtime or another processor keys new entries; a hit marks its entry used). Entries of the same graph under
    /// other settings (thread counts) are kept. Best effort: what cannot be read or deleted now is tried at the next save.
    /// </summary>
    private void DeleteStale()
    {
        try
        {
            foreach (var folder in Directory.EnumerateDirectories(_root))
            {
                var name = Path.GetFileName(folder);
                if (name == Key || name.Contains(".tmp-", StringComparison.Ordinal)) continue;
                var marker = Path.Combine(folder, MarkerName);
                if (!File.Exists(marker))
                {
                    continue; // not an entry (or one half deleted, which its own key's next load replaces)
                }

                if (StaleBecause(marker) is { } reason)
                {
                    _logger.LogInformation("Deleting the weight cache entry {Entry}: {Reason}.", folder, reason);
                    Delete(folder);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort, as above.
        }
    }

    /// <summary>Why the entry with <paramref name="marker"/> will not be used again, or null when it may be.</summary>
    private static string? StaleBecause(string marker)
    {
        if (DateTime.UtcNow - File.GetLastWriteTimeUtc(marker) > UnusedAfter) return $"not loaded for more than {UnusedAfter.TotalDays:F0} days";
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(marker));
            root = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null; // its own key's next load finds it unusable and replaces it
        }

        if (!root.TryGetProperty("source", out var sourceName) || sourceName.GetString() is not { } path) return null;
        var source = new FileInfo(path);
        if (!source.Exists) return $"its source {path} is gone";
        if (root.TryGetProperty("sourceBytes", out var bytes) && bytes.TryGetInt64(out var length) && length != source.Length)
        {
            return $"its source {path} has changed";
        }

        return root.TryGetProperty("sourceWriteTicks", out var ticks) && ticks.TryGetInt64(out var written) && written != source.LastWriteTimeUtc.Ticks
            ? $"its source {path} has changed"
            : null;
    }

    /// <summary>Records that an entry was loaded (its marker's write time), so it is not deleted as unused; best effort (the folder may be read-only).</summary>
    private static void MarkUsed(string entry)
    {
        try
        {
            File.SetLastWriteTimeUtc(Path.Combine(entry, MarkerName), DateTime.UtcNow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only cache (an image's baked-in entries) is never swept by this process either.
        }
    }

    private void WriteMarker(string folder)
    {
        var files = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(folder)) files[Path.GetFileName(file)] = new FileInfo(file).Length;
        var source = new FileInfo(_graphFile);
        var marker = new
        {
            source = source.FullName,
            sourceBytes = source.Length,
            sourceWriteTicks = source.LastWriteTimeUtc.Ticks,
            files,
            onnxRuntime = OrtEnv.Instance().GetVersionString(),
            createdUtc = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
        };

        // Written under another name and renamed, so a marker is either whole or absent.
        var path = Path.Combine(folder, MarkerName);
        File.WriteAllText(path + ".part", JsonSerializer.Serialize(marker));
        File.Move(path + ".part", path);
    }

    /// <summary>Deletes an entry or temporary folder, best effort; the marker goes first so that no reader trusts what remains.</summary>
    private void Delete(string folder)
    {
        try
        {
            if (Directory.Exists(folder)) File.Delete(Path.Combine(folder, MarkerName));
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("Could not delete {Folder} ({Problem}).", folder, e.Message);
        }
    }
}
