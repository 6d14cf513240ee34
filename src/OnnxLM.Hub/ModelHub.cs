using System.Collections.Concurrent;
using System.Text.RegularExpressions;

namespace OnnxLM.Hub;

/// <summary>
/// Downloads a model from the Hugging Face Hub into the cache that Python's huggingface_hub shares, fetching only what
/// one model needs: configuration, tokenizer and chat-template files and the chosen dtype's graph with its external
/// data (or one GenAI variant folder). Thread-safe; cheap to create.
/// </summary>
/// <example><code>
/// var snapshot = await new ModelHub().DownloadAsync("onnx-community/Qwen2.5-0.5B-Instruct", new HubDownloadOptions { Dtype = "q4" });
/// using var model = LanguageModel.Load(snapshot.ModelPath);
/// </code></example>
public sealed partial class ModelHub
{
    /// <summary>
    /// The dtype chosen when none is given, the first the repository has: 4-bit and 8-bit integer weights first (smallest,
    /// and run well by the CPU provider), then fp16, q4f16 and fp32, and bnb4 last (few providers run it).
    /// </summary>
    public static IReadOnlyList<string> DefaultDtypeOrder { get; } = ["q4", "q8", "int8", "uint8", "fp16", "q4f16", "fp32", "bnb4"];

    private readonly ModelHubOptions _options;
    private readonly HubHttp _http;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _blobLocks = new(StringComparer.Ordinal);

    /// <summary>Creates a hub client; null options read the environment (<see cref="ModelHubOptions.FromEnvironment()"/>).</summary>
    public ModelHub(ModelHubOptions? options = null)
    {
        _options = options ?? ModelHubOptions.FromEnvironment();
        _http = new HubHttp(_options);
    }

    /// <summary>The options in use.</summary>
    public ModelHubOptions Options => _options;

    /// <summary>
    /// Makes the repository's model files present in the cache and returns the snapshot: files already there are not
    /// fetched again, interrupted ones resume, every file is checked against its hash. Offline, no request is made and
    /// the revision resolves through <c>refs/</c>.
    /// </summary>
    /// <param name="repoId">The repository, <c>org/name</c>.</param>
    /// <param name="options">Revision, dtype or variant (default: <c>main</c>, the first dtype of <see cref="DefaultDtypeOrder"/> present).</param>
    /// <param name="progress">Receives bytes done per file and overall.</param>
    /// <param name="cancellationToken">Stops the download; partial files are kept for the next pull.</param>
    /// <exception cref="HubException">The repository, revision, dtype or variant is missing, access is refused, a file is corrupt, the disk is full, the Hub keeps failing, or offline without the files.</exception>
    public async Task<HubSnapshot> DownloadAsync(string repoId, HubDownloadOptions? options = null, IProgress<HubProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ValidateRepoId(repoId);
        options ??= new HubDownloadOptions();
        var cache = new HubCache(_options.CacheDirectory, repoId);
        if (_options.Offline) return FromCache(repoId, options, cache, progress, "offline (HF_HUB_OFFLINE is set)");

        RepoInfo info;
        try
        {
            info = await _http.GetRepoInfoAsync(repoId, options.Revision, cancellationToken).ConfigureAwait(false);
        }
        catch (HubException e) when (e.Kind == HubErrorKind.Network && e.StatusCode is null && cache.ResolveRevision(options.Revision) is not null)
        {
            // As huggingface_hub does when the Hub cannot be reached: the cached snapshot of that revision.
            return FromCache(repoId, options, cache, progress, e.Message);
        }

        var commit = info.Sha!;
        var siblings = info.Siblings!.ToDictionary(s => s.Path, StringComparer.Ordinal);
        var selection = HubFileSelector.Select(repoId, siblings.Keys, options.Dtype, options.Variant);
        foreach (var file in selection.Files) RequireSafe(repoId, file, "path");
        var total = selection.Files.Sum(f => siblings[f].Lfs?.Size ?? siblings[f].Size ?? 0);
        var tracker = new PullProgress(progress, total);
        var missing = new List<string>();
        foreach (var file in selection.Files)
        {
            if (cache.HasFile(commit, file)) tracker.Completed(file, new FileInfo(cache.PointerPath(commit, file)).Length);
            else missing.Add(file);
        }

        EnsureRoom(cache, missing.Select(f => siblings[f]), selection.Files.FirstOrDefault() ?? repoId);
        long downloaded = 0;
        var downloader = new BlobDownloader(_http, cache, tracker);
        await Parallel.ForEachAsync(missing, new ParallelOptions { MaxDegreeOfParallelism = _options.MaxParallelDownloads, CancellationToken = cancellationToken }, async (file, ct) =>
        {
            var metadata = await _http.HeadAsync(repoId, commit, file, ct).ConfigureAwait(false);
            var sibling = siblings[file];
            // An LFS file is named by its sha256: from the redirect's X-Linked-Etag, else the listing (a client that followed
            // the redirect saw the CDN's unrelated ETag); a small file by its git sha1.
            var etag = metadata.LinkedEtag ?? sibling.Lfs?.Sha256 ?? metadata.Etag ?? sibling.BlobId
                ?? throw new HubException(HubErrorKind.Network, $"The Hub gave no etag for '{file}' of '{repoId}'.");
            var size = (sibling.Lfs is null || metadata.LinkedEtag is not null ? metadata.Size : null) ?? sibling.Lfs?.Size ?? metadata.Size ?? sibling.Size
                ?? throw new HubException(HubErrorKind.Network, $"The Hub gave no size for '{file}' of '{repoId}'.");
            RequireSafe(repoId, etag, "etag");
            var gate = _blobLocks.GetOrAdd(cache.BlobPath(etag), _ => new SemaphoreSlim(1, 1));
            await gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                using var fileLock = await cache.LockBlobAsync(etag, ct).ConfigureAwait(false);
                Interlocked.Add(ref downloaded, await downloader.DownloadAsync(repoId, commit, file, etag, size, ct).ConfigureAwait(false));
                cache.Link(commit, file, etag);
            }
            finally
            {
                gate.Release();
            }
        }).ConfigureAwait(false);

        cache.WriteRef(options.Revision, commit);
        return Snapshot(repoId, options, cache, commit, selection, downloaded);
    }

    private static HubSnapshot FromCache(string repoId, HubDownloadOptions options, HubCache cache, IProgress<HubProgress>? progress, string why)
    {
        var commit = cache.ResolveRevision(options.Revision);
        if (commit is null || !Directory.Exists(cache.SnapshotFolder(commit)))
        {
            throw new HubException(HubErrorKind.Offline, commit is null
                ? $"'{repoId}' at '{options.Revision}' is not in the cache ({cache.RepoFolder}) and the Hub cannot be asked: {why}."
                : $"'{repoId}' at '{options.Revision}' points to commit {commit}, whose snapshot is not in the cache ({cache.RepoFolder}); {why}.");
        }

        var selection = HubFileSelector.Select(repoId, cache.SnapshotFiles(commit), options.Dtype, options.Variant);
        var tracker = new PullProgress(progress, selection.Files.Sum(f => new FileInfo(cache.PointerPath(commit, f)).Length));
        foreach (var file in selection.Files) tracker.Completed(file, new FileInfo(cache.PointerPath(commit, file)).Length);
        return Snapshot(repoId, options, cache, commit, selection, 0);
    }

    private static HubSnapshot Snapshot(string repoId, HubDownloadOptions options, HubCache cache, string commit, HubFileSelector.Selection selection, long downloaded)
    {
        var folder = cache.SnapshotFolder(commit);
        var modelPath = selection.Variant is null ? folder : Path.Combine(folder, selection.Variant.Replace('/', Path.DirectorySeparatorChar));
        return new HubSnapshot(repoId, options.Revision, commit, folder, modelPath, selection.Files, selection.Dtype, selection.Variant, downloaded);
    }

    /// <summary>Fails before any byte is written when the cache's disk cannot hold the missing files.</summary>
    private static void EnsureRoom(HubCache cache, IEnumerable<RepoSibling> missing, string first)
    {
        var needed = missing.Sum(s => s.Lfs?.Size ?? s.Size ?? 0);
        if (needed == 0) return;
        Directory.CreateDirectory(cache.RepoFolder);
        long free;
        try
        {
            free = new DriveInfo(cache.RepoFolder).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return; // no drive information (some network and container file systems): the writes will tell.
        }

        if (free < needed)
        {
            throw new HubException(HubErrorKind.DiskFull,
                $"The files need {needed} bytes but the disk of the cache ({cache.RepoFolder}) has {free} free (first file: '{first}'): free space there, or set HF_HUB_CACHE to a larger disk.");
        }
    }

    /// <summary>A path or etag from the Hub becomes a file name in the cache: nothing that climbs out of it or names a root.</summary>
    private static void RequireSafe(string repoId, string value, string what)
    {
        var segments = value.Split('/');
        if (value.Length == 0 || value.Contains('\\', StringComparison.Ordinal) || value.Contains(':', StringComparison.Ordinal) || Path.IsPathRooted(value)
            || segments.Any(s => s is "" or "." or ".."))
        {
            throw new HubException(HubErrorKind.Integrity, $"The Hub's answer for '{repoId}' holds an unsafe {what} '{value}'; nothing was written for it.");
        }
    }

    private static void ValidateRepoId(string repoId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(repoId);
        if (!RepoIdPattern().IsMatch(repoId) || repoId.Contains("--", StringComparison.Ordinal) || repoId.Contains("..", StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{repoId}' is not a Hub repository id: expected 'org/name' (letters, digits, '-', '_', '.'; no '--' or '..').", nameof(repoId));
        }
    }

    /// <summary>Whether a string has the form of a repository id (<c>org/name</c>), as the CLI tells a Hub model from a folder.</summary>
    public static bool IsRepoId(string value) =>
        value is not null && RepoIdPattern().IsMatch(value) && value.Contains('/', StringComparison.Ordinal) && !value.Contains("--", StringComparison.Ordinal) && !value.Contains("..", StringComparison.Ordinal);

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95})?$")]
    private static partial Regex RepoIdPattern();
}
