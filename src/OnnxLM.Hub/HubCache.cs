using System.Text.RegularExpressions;

namespace OnnxLM.Hub;

/// <summary>
/// One repository's folder in the cache, laid out as huggingface_hub lays it: <c>models--org--name/</c> with
/// <c>blobs/&lt;etag&gt;</c> (contents, named by sha256 for LFS files and git sha1 for others; <c>.incomplete</c> while
/// downloading), <c>snapshots/&lt;commit&gt;/&lt;path&gt;</c> (relative links to the blobs) and <c>refs/&lt;revision&gt;</c>
/// (the commit a branch or tag pointed to).
/// </summary>
internal sealed partial class HubCache
{
    private readonly string _locks;

    public HubCache(string cacheDirectory, string repoId)
    {
        var name = "models--" + repoId.Replace("/", "--", StringComparison.Ordinal);
        RepoFolder = Path.Combine(Path.GetFullPath(cacheDirectory), name);
        _locks = Path.Combine(Path.GetFullPath(cacheDirectory), ".locks", name);
    }

    public string RepoFolder { get; }

    public string SnapshotFolder(string commit) => Path.Combine(RepoFolder, "snapshots", commit);

    public string BlobPath(string etag) => Path.Combine(RepoFolder, "blobs", etag);

    public string PointerPath(string commit, string file) => Path.Combine(SnapshotFolder(commit), file.Replace('/', Path.DirectorySeparatorChar));

    /// <summary>The commit of a revision from <c>refs/</c> (a sha is its own commit); null when the cache has no such ref.</summary>
    public string? ResolveRevision(string revision)
    {
        if (IsCommit(revision)) return revision;
        var path = RefPath(revision);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    /// <summary>Records what a branch or tag points to (huggingface_hub writes no ref for a sha).</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit) return;
        var path = RefPath(revision);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (File.Exists(path) && File.ReadAllText(path).Trim() == commit) return;
        var temporary = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(temporary, commit);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Whether the snapshot already holds a readable file at this path (a link to an existing blob, or a copy).</summary>
    public bool HasFile(string commit, string file) => File.Exists(PointerPath(commit, file));

    /// <summary>The snapshot's files as repository paths (<c>/</c>-separated).</summary>
    public List<string> SnapshotFiles(string commit)
    {
        var folder = SnapshotFolder(commit);
        return Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(File.Exists)
            .Select(f => Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/'))
            .ToList();
    }

    /// <summary>Points the snapshot's file at the blob with a relative link (<c>../../blobs/&lt;etag&gt;</c>, one more <c>../</c> per folder), or a copy where links are refused.</summary>
    public void Link(string commit, string file, string etag)
    {
        var pointer = PointerPath(commit, file);
        var blob = BlobPath(etag);
        Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
        if (File.Exists(pointer) || new FileInfo(pointer).LinkTarget is not null) File.Delete(pointer);
        try
        {
            File.CreateSymbolicLink(pointer, Path.GetRelativePath(Path.GetDirectoryName(pointer)!, blob));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // huggingface_hub copies the blob where the file system refuses links (Windows without developer mode).
            File.Copy(blob, pointer, overwrite: true);
        }
    }

    /// <summary>
    /// Holds <c>.locks/models--org--name/&lt;etag&gt;.lock</c> exclusively while a blob is written, as huggingface_hub's
    /// file lock does (both take an exclusive advisory lock on Unix), so two processes never write one blob at once.
    /// </summary>
    public async Task<IDisposable> LockBlobAsync(string etag, CancellationToken ct)
    {
        Directory.CreateDirectory(_locks);
        var path = Path.Combine(_locks, etag + ".lock");
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A full commit sha (40 hex digits).</summary>
    public static bool IsCommit(string revision) => CommitSha().IsMatch(revision);

    private string RefPath(string revision) => Path.Combine(RepoFolder, "refs", revision.Replace('/', Path.DirectorySeparatorChar));

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitSha();
}
