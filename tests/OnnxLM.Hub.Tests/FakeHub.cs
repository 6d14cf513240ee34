using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace OnnxLM.Hub.Tests;

/// <summary>
/// An in-process Hub on Kestrel (127.0.0.1, port 0) that answers as the real one does: repository info
/// (<c>/api/models/{repo}/revision/{rev}</c>, with <c>?blobs=true</c> sizes, blob ids and LFS sha256), <c>resolve</c>
/// where LFS files redirect to a CDN path with <c>X-Linked-Etag</c>/<c>X-Linked-Size</c> on the redirect and small files
/// answer with their git sha1 <c>ETag</c>, <c>Range</c> on the CDN; private, missing and gated repositories answer
/// 401/403/404 as the Hub does. Faults can be queued per file: cut a transfer, corrupt bytes, answer a status.
/// </summary>
public sealed class FakeHub : IAsyncDisposable
{
    public const string GoodToken = "hf_good";

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, FakeRepo> _repos = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte[]> _cdn = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Fault>> _faults = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _renamed = new(StringComparer.Ordinal);

    private FakeHub(WebApplication app) => _app = app;

    /// <summary>Every request: method, path and query, the Range header, the Authorization header.</summary>
    public ConcurrentQueue<(string Method, string Path, string? Range, string? Authorization)> Requests { get; } = new();

    public string Endpoint { get; private set; } = "";

    public string Cdn { get; private set; } = "";

    public static async Task<FakeHub> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        // Two ports: the Hub and its "CDN" differ in authority, as the real ones do, so a token must not follow the redirect.
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(System.Net.IPAddress.Loopback, 0);
            k.Listen(System.Net.IPAddress.Loopback, 0);
        });
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var hub = new FakeHub(app);
        app.Run(hub.HandleAsync);
        await app.StartAsync();
        hub.Endpoint = app.Urls.First().TrimEnd('/');
        hub.Cdn = app.Urls.Last().TrimEnd('/');
        return hub;
    }

    public FakeRepo Add(FakeRepo repo)
    {
        _repos[repo.Id] = repo;
        foreach (var content in repo.Files.Values) _cdn[Sha256(content)] = content;
        return repo;
    }

    /// <summary>A repository moved to a new name: its old paths answer 307 with the new relative path.</summary>
    public void Rename(string oldId, string newId) => _renamed[oldId] = newId;

    /// <summary>Queues a fault for the next request whose path ends with <paramref name="file"/> (on the Hub or the CDN).</summary>
    public void Inject(string file, Fault fault) => _faults.GetOrAdd(file, _ => new ConcurrentQueue<Fault>()).Enqueue(fault);

    public int Count(string method, string pathPart) => Requests.Count(r => r.Method == method && r.Path.Contains(pathPart, StringComparison.Ordinal));

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = Uri.UnescapeDataString(request.Path.Value ?? "");
        Requests.Enqueue((request.Method, path + request.QueryString, request.Headers.Range.FirstOrDefault(), request.Headers.Authorization.FirstOrDefault()));
        var response = context.Response;
        var token = request.Headers.Authorization.FirstOrDefault() is { } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..] : null;

        if (path.StartsWith("/cdn/", StringComparison.Ordinal))
        {
            var sha = path["/cdn/".Length..];
            if (!_cdn.TryGetValue(sha, out var content)) { response.StatusCode = 404; return; }
            response.Headers.ETag = "\"cdn-" + sha[..8] + "\"";
            await ServeAsync(context, sha, content, TakeFault(path, head: false));
            return;
        }

        if (path.StartsWith("/api/models/", StringComparison.Ordinal))
        {
            var rest = path["/api/models/".Length..];
            var at = rest.IndexOf("/revision/", StringComparison.Ordinal);
            var repoId = rest[..at];
            var revision = rest[(at + "/revision/".Length)..];
            if (_renamed.TryGetValue(repoId, out var movedTo)) { Moved(response, $"/api/models/{movedTo}/revision/{revision}{request.QueryString}"); return; }
            if (TakeFault(path, head: false) is { Status: { } status } fault) { await FailAsync(response, status, fault.RetryAfter); return; }
            if (!Visible(repoId, token, out var repo)) { RepoMissing(response, token); return; }
            if (revision != "main" && revision != repo.Commit) { response.StatusCode = 404; response.Headers["X-Error-Code"] = "RevisionNotFound"; return; }
            var blobs = request.Query["blobs"] == "true";
            var siblings = repo.Files.Select(f => blobs
                ? (object)new { rfilename = f.Key, size = f.Value.Length, blobId = repo.IsLfs(f.Key) ? GitSha1(Pointer(f.Value)) : GitSha1(f.Value), lfs = repo.IsLfs(f.Key) ? new { sha256 = Sha256(f.Value), size = f.Value.Length, pointerSize = Pointer(f.Value).Length } : null }
                : new { rfilename = f.Key });
            response.ContentType = "application/json";
            await response.WriteAsync(JsonSerializer.Serialize(new { id = repo.Id, sha = repo.Commit, gated = repo.Gated ? "auto" : (object)false, siblings }));
            return;
        }

        var resolve = path.IndexOf("/resolve/", StringComparison.Ordinal);
        if (resolve > 0)
        {
            var repoId = path[1..resolve];
            var afterRevision = path[(resolve + "/resolve/".Length)..];
            var slash = afterRevision.IndexOf('/', StringComparison.Ordinal);
            var (revision, file) = (afterRevision[..slash], afterRevision[(slash + 1)..]);
            if (_renamed.TryGetValue(repoId, out var movedTo)) { Moved(response, $"/{movedTo}/resolve/{afterRevision}"); return; }
            var fault = TakeFault(path, head: request.Method == "HEAD");
            if (fault is { Status: { } status }) { await FailAsync(response, status, fault.RetryAfter); return; }
            if (!Visible(repoId, token, out var repo)) { RepoMissing(response, token); return; }
            if (repo.Gated && token != GoodToken)
            {
                response.StatusCode = token is null ? 401 : 403;
                response.Headers["X-Error-Code"] = "GatedRepo";
                response.Headers["X-Error-Message"] = "Access to this model is restricted.";
                return;
            }

            if (revision != "main" && revision != repo.Commit) { response.StatusCode = 404; response.Headers["X-Error-Code"] = "RevisionNotFound"; return; }
            if (!repo.Files.TryGetValue(file, out var content)) { response.StatusCode = 404; response.Headers["X-Error-Code"] = "EntryNotFound"; return; }
            response.Headers["X-Repo-Commit"] = repo.Commit;
            if (repo.IsLfs(file))
            {
                var sha = Sha256(content);
                response.StatusCode = 302;
                response.Headers.Location = $"{Cdn}/cdn/{sha}";
                response.Headers.ETag = "\"" + GitSha1(Pointer(content)) + "\"";
                response.Headers["X-Linked-Etag"] = "\"" + sha + "\"";
                response.Headers["X-Linked-Size"] = content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
                return;
            }

            response.Headers.ETag = "\"" + GitSha1(content) + "\"";
            await ServeAsync(context, file, content, fault);
            return;
        }

        response.StatusCode = 404;
    }

    private async Task ServeAsync(HttpContext context, string name, byte[] content, Fault? fault)
    {
        var response = context.Response;
        long from = 0;
        if (context.Request.Headers.Range.FirstOrDefault() is { } range && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            from = long.Parse(range[6..^1], System.Globalization.CultureInfo.InvariantCulture);
            if (from >= content.Length) { response.StatusCode = 416; return; }
            response.StatusCode = 206;
            response.Headers.ContentRange = $"bytes {from}-{content.Length - 1}/{content.Length}";
        }

        response.ContentLength = content.Length - from;
        if (context.Request.Method == "HEAD") return;
        var body = content.AsMemory((int)from);
        if (fault is { Corrupt: true })
        {
            var copy = body.ToArray();
            copy[copy.Length / 2] ^= 0xFF;
            body = copy;
        }

        if (fault is { CutAfter: { } cut })
        {
            await response.Body.WriteAsync(body[..(int)Math.Min(cut, body.Length)]);
            await response.Body.FlushAsync();
            await Task.Delay(200); // let the bytes leave before the connection drops
            context.Abort();
            return;
        }

        await response.Body.WriteAsync(body);
    }

    private static async Task FailAsync(HttpResponse response, int status, int? retryAfter)
    {
        response.StatusCode = status;
        if (retryAfter is { } seconds) response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await response.WriteAsync($"fault {status}");
    }

    private static void Moved(HttpResponse response, string path)
    {
        response.StatusCode = 307;
        response.Headers.Location = path;
    }

    // The Hub does not reveal whether a repository exists: 401 without a token, 404 with one.
    private static void RepoMissing(HttpResponse response, string? token)
    {
        response.StatusCode = token is null ? 401 : 404;
        response.Headers["X-Error-Code"] = "RepoNotFound";
    }

    private bool Visible(string repoId, string? token, out FakeRepo repo) =>
        _repos.TryGetValue(repoId, out repo!) && (!repo.Private || token == GoodToken);

    // A HEAD takes only status faults: cuts and corruption are for the GET that carries the bytes.
    private Fault? TakeFault(string path, bool head)
    {
        foreach (var (file, queue) in _faults)
        {
            if (!path.EndsWith(file, StringComparison.Ordinal) || !queue.TryPeek(out var next) || (head && next.Status is null)) continue;
            lock (queue)
            {
                if (queue.TryPeek(out next) && (!head || next.Status is not null) && queue.TryDequeue(out var fault)) return fault;
            }
        }

        return null;
    }

    // Hashes computed once per content, so the fake's own cost stays out of what a pull measures.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<byte[], string> Sha256s = new();

    public static string Sha256(byte[] content) => Sha256s.GetValue(content, static c => Convert.ToHexStringLower(SHA256.HashData(c)));

    /// <summary>git's blob id: sha1 of "blob {size}\0" and the content.</summary>
    public static string GitSha1(byte[] content) => Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {content.Length}\0"), .. content]));

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<byte[], byte[]> Pointers = new();

    private static byte[] Pointer(byte[] content) => Pointers.GetValue(content, PointerOf);

    private static byte[] PointerOf(byte[] content) =>
        Encoding.ASCII.GetBytes($"version https://git-lfs.github.com/spec/v1\noid sha256:{Sha256(content)}\nsize {content.Length}\n");
}

/// <summary>One fault for one request: a status (with Retry-After), a cut after some bytes, or corrupted bytes.</summary>
public sealed record Fault(int? Status = null, int? RetryAfter = null, long? CutAfter = null, bool Corrupt = false);

/// <summary>A repository of the fake hub: files by path at one commit; graphs and weights are LFS files.</summary>
public sealed class FakeRepo(string id, IReadOnlyDictionary<string, byte[]> files)
{
    public string Id { get; } = id;

    public IReadOnlyDictionary<string, byte[]> Files { get; } = files;

    public string Commit { get; init; } = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(id)));

    public bool Gated { get; init; }

    public bool Private { get; init; }

    public bool IsLfs(string path) => path.EndsWith(".onnx", StringComparison.Ordinal) || path.Contains(".onnx_data", StringComparison.Ordinal) || path.EndsWith(".data", StringComparison.Ordinal);
}
