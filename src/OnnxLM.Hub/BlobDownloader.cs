using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace OnnxLM.Hub;

/// <summary>
/// Fetches one file into <c>blobs/&lt;etag&gt;.incomplete</c>, resuming a kept partial with <c>Range: bytes=N-</c>,
/// checks its size and hash against the etag (sha256 for LFS files, the git blob sha1 for others), then renames it
/// to <c>blobs/&lt;etag&gt;</c>. A mismatch deletes the partial, so no corrupt blob is ever left.
/// </summary>
internal sealed partial class BlobDownloader(HubHttp http, HubCache cache, PullProgress progress)
{
    private const int BufferSize = 1 << 20;

    /// <summary>Downloads the file unless its blob is there; returns the bytes fetched.</summary>
    public async Task<long> DownloadAsync(string repoId, string commit, string file, string etag, long size, CancellationToken ct)
    {
        var blob = cache.BlobPath(etag);
        if (File.Exists(blob) && new FileInfo(blob).Length == size)
        {
            progress.Completed(file, size);
            return 0;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        var partial = blob + ".incomplete";
        long fetched = 0;
        for (var attempt = 0; ; attempt++)
        {
            var have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
            if (have > size)
            {
                File.Delete(partial);
                have = 0;
            }

            try
            {
                if (have < size)
                {
                    fetched += await FetchAsync(repoId, commit, file, partial, have, size, ct).ConfigureAwait(false);
                    var now = new FileInfo(partial).Length;
                    if (now < size) throw new IOException($"the transfer ended at byte {now} of {size}");
                }

                break;
            }
            catch (Exception e) when (IsTransfer(e) && !ct.IsCancellationRequested)
            {
                if (IsDiskFull(e)) throw DiskFull(file, blob, size, e);
                if (attempt >= http.MaxRetries)
                {
                    var kept = File.Exists(partial) ? new FileInfo(partial).Length : 0;
                    throw new HubException(HubErrorKind.Network,
                        $"Downloading '{file}' of '{repoId}' failed after {attempt + 1} tries ({e.Message}); the {kept} bytes received are kept and the next pull resumes from there.", e);
                }

                await Task.Delay(http.Backoff(attempt, null), ct).ConfigureAwait(false);
            }
        }

        Verify(file, partial, etag, size);
        File.Move(partial, blob, overwrite: true);
        return fetched;
    }

    private async Task<long> FetchAsync(string repoId, string commit, string file, string partial, long have, long size, CancellationToken ct)
    {
        using var response = await http.GetFileAsync(repoId, commit, file, have, ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            // The kept partial does not fit the file any more: start again.
            File.Delete(partial);
            throw new IOException($"the server refused to resume '{file}' at byte {have}");
        }

        var resumed = have > 0 && response.StatusCode == HttpStatusCode.PartialContent;
        if (!resumed) have = 0;
        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using var output = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, BufferSize, useAsync: false);
        var buffer = new byte[BufferSize];
        long fetched = 0;
        progress.Report(file, have, size);
        int read;
        while ((read = await body.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            await output.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
            fetched += read;
            progress.Report(file, have + fetched, size);
        }

        return fetched;
    }

    /// <summary>Size, then sha256 (LFS) or git blob sha1 (small files) against the etag; deletes the partial on a mismatch.</summary>
    private static void Verify(string file, string partial, string etag, long size)
    {
        var length = new FileInfo(partial).Length;
        string? actual = null;
        if (length == size)
        {
            using var stream = new FileStream(partial, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize);
            if (Sha256().IsMatch(etag))
            {
                actual = Convert.ToHexStringLower(SHA256.HashData(stream));
            }
            else if (GitSha1().IsMatch(etag))
            {
                using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
                sha1.AppendData(Encoding.ASCII.GetBytes($"blob {size}\0"));
                var buffer = new byte[BufferSize];
                int read;
                while ((read = stream.Read(buffer)) > 0) sha1.AppendData(buffer, 0, read);
                actual = Convert.ToHexStringLower(sha1.GetHashAndReset());
            }
            else
            {
                actual = etag; // an etag that is no content hash: the size is all there is to check.
            }
        }

        if (length == size && actual == etag) return;
        File.Delete(partial);
        throw new HubException(HubErrorKind.Integrity, length != size
            ? $"'{file}' arrived with {length} bytes where the Hub announced {size}; the partial file was deleted, pull again."
            : $"'{file}' is corrupt: its hash is {actual}, the Hub's is {etag}; the partial file was deleted, pull again.");
    }

    private static bool IsTransfer(Exception e) => e is IOException or HttpRequestException || (e is OperationCanceledException && e.InnerException is TimeoutException);

    // ENOSPC on Linux and macOS (the errno is the HResult there); ERROR_DISK_FULL and ERROR_HANDLE_DISK_FULL on Windows.
    internal static bool IsDiskFull(Exception e) => e is IOException && (OperatingSystem.IsWindows()
        ? (e.HResult & 0xFFFF) is 0x70 or 0x27
        : e.HResult == 28 || e.Message.Contains("No space left on device", StringComparison.Ordinal));

    internal static HubException DiskFull(string file, string blob, long size, Exception? inner) =>
        new(HubErrorKind.DiskFull, $"No space left on the disk of the cache writing '{file}' ({size} bytes) to {Path.GetDirectoryName(blob)}: free space there, or set HF_HUB_CACHE to a larger disk.", inner);

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex GitSha1();
}
