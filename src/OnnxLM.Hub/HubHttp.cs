using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace OnnxLM.Hub;

/// <summary>
/// The Hub's HTTP API as huggingface_hub uses it: repository info, <c>HEAD</c> of <c>resolve</c> without following
/// redirects (where <c>X-Linked-Etag</c>/<c>X-Linked-Size</c> describe LFS files), <c>GET</c> following them by hand
/// (the token goes to the Hub only, never to the CDN), retries with backoff on 5xx/429 and dropped connections.
/// </summary>
internal sealed class HubHttp(ModelHubOptions options)
{
    // A client that leaves redirects to us, shared by every hub that is not given one.
    private static readonly HttpClient Shared = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    })
    { Timeout = TimeSpan.FromMinutes(5) };

    private readonly HttpClient _client = options.HttpClient ?? Shared;
    private readonly string _endpoint = options.Endpoint.ToString().TrimEnd('/');

    public int MaxRetries => options.MaxRetries;

    /// <summary><c>GET /api/models/{repo}/revision/{rev}?blobs=true</c>: the commit and the files with their sizes and LFS sha256.</summary>
    public async Task<RepoInfo> GetRepoInfoAsync(string repoId, string revision, CancellationToken ct)
    {
        var url = new Uri($"{_endpoint}/api/models/{repoId}/revision/{Uri.EscapeDataString(revision)}?blobs=true");
        using var response = await SendFollowingRelativeAsync(HttpMethod.Get, url, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode) throw Error(response, repoId, revision, file: null);
        var info = await response.Content.ReadFromJsonAsync(RepoInfoJson.Default.RepoInfo, ct).ConfigureAwait(false);
        return info is { Sha: not null, Siblings: not null }
            ? info
            : throw new HubException(HubErrorKind.Network, $"The Hub's answer for '{repoId}' at '{revision}' has no commit sha or file list ({url}).");
    }

    /// <summary><c>HEAD /{repo}/resolve/{commit}/{path}</c>, redirects not followed: the file's etag and size.</summary>
    public async Task<FileMetadata> HeadAsync(string repoId, string commit, string file, CancellationToken ct)
    {
        using var response = await SendFollowingRelativeAsync(HttpMethod.Head, new Uri(ResolveUrl(repoId, commit, file)), ct).ConfigureAwait(false);
        var status = (int)response.StatusCode;
        if (!response.IsSuccessStatusCode && status is < 300 or >= 400) throw Error(response, repoId, commit, file);
        var redirect = status is >= 300 and < 400;
        // On a redirect the ETag is the LFS pointer's git sha1: only X-Linked-Etag names the content there.
        var etag = redirect ? null : response.Headers.ETag?.Tag ?? Header(response, "ETag");
        var size = long.TryParse(Header(response, "X-Linked-Size"), out var linked) ? linked : redirect ? (long?)null : response.Content.Headers.ContentLength;
        return new FileMetadata(Header(response, "X-Repo-Commit"), NormalizeEtag(Header(response, "X-Linked-Etag")), NormalizeEtag(etag), size);
    }

    /// <summary><c>GET</c> of the file from byte <paramref name="from"/> on, following redirects; the caller disposes the response.</summary>
    public async Task<HttpResponseMessage> GetFileAsync(string repoId, string commit, string file, long from, CancellationToken ct)
    {
        var url = new Uri(ResolveUrl(repoId, commit, file));
        for (var hop = 0; hop <= 10; hop++)
        {
            var target = url;
            var response = await SendAsync(() =>
            {
                var request = new HttpRequestMessage(HttpMethod.Get, target);
                if (from > 0) request.Headers.Range = new RangeHeaderValue(from, null);
                return request;
            }, ct).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && response.Headers.Location is { } location)
            {
                url = location.IsAbsoluteUri ? location : new Uri(target, location);
                response.Dispose();
                continue;
            }

            if (response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) return response;
            using (response) throw Error(response, repoId, commit, file);
        }

        throw new HubException(HubErrorKind.Network, $"More than 10 redirects fetching '{file}' of '{repoId}'.");
    }

    /// <summary>
    /// Follows relative redirects only (a renamed repository answers with its new path on the Hub itself), as
    /// huggingface_hub does for metadata: an absolute one goes to the CDN and is the answer.
    /// </summary>
    private async Task<HttpResponseMessage> SendFollowingRelativeAsync(HttpMethod method, Uri url, CancellationToken ct)
    {
        for (var hop = 0; ; hop++)
        {
            var target = url;
            var response = await SendAsync(() =>
            {
                var request = new HttpRequestMessage(method, target);
                request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
                return request;
            }, ct).ConfigureAwait(false);
            if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { IsAbsoluteUri: false } location && hop < 10)
            {
                url = new Uri(target, location);
                response.Dispose();
                continue;
            }

            return response;
        }
    }

    /// <summary>Sends one request, retrying 5xx, 429 and failed connections with doubling delays (Retry-After honoured, capped).</summary>
    private async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> create, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var request = create();
            request.Headers.UserAgent.ParseAdd("onnxlm-hub/1.0");
            if (options.Token is { } token && SameHost(request.RequestUri!))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            HttpResponseMessage response;
            try
            {
                response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            }
            catch (HttpRequestException) when (attempt < options.MaxRetries)
            {
                await Task.Delay(Backoff(attempt, null), ct).ConfigureAwait(false);
                continue;
            }
            catch (HttpRequestException e)
            {
                throw new HubException(HubErrorKind.Network, $"Could not reach the Hub at {request.RequestUri!.GetLeftPart(UriPartial.Authority)} after {attempt + 1} tries: {e.Message}", e);
            }
            catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
            {
                throw new HubException(HubErrorKind.Network, $"The Hub did not answer {request.Method} {request.RequestUri} in time.", e);
            }

            var status = (int)response.StatusCode;
            if ((status >= 500 || status == 429) && attempt < options.MaxRetries)
            {
                var retryAfter = RetryAfter(response);
                response.Dispose();
                await Task.Delay(Backoff(attempt, retryAfter), ct).ConfigureAwait(false);
                continue;
            }

            return response;
        }
    }

    /// <summary>The wait before retry <paramref name="attempt"/>+1: Retry-After when given, else doubling from RetryDelay; never above MaxRetryDelay.</summary>
    public TimeSpan Backoff(int attempt, TimeSpan? retryAfter)
    {
        var delay = retryAfter ?? options.RetryDelay * Math.Pow(2, Math.Min(attempt, 16));
        return delay > options.MaxRetryDelay ? options.MaxRetryDelay : delay < TimeSpan.Zero ? TimeSpan.Zero : delay;
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response) =>
        response.Headers.RetryAfter is { } r ? r.Delta ?? (r.Date is { } date ? date - DateTimeOffset.UtcNow : null) : null;

    private bool SameHost(Uri uri) => Uri.Compare(uri, options.Endpoint, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;

    private string ResolveUrl(string repoId, string commit, string file) =>
        $"{_endpoint}/{repoId}/resolve/{Uri.EscapeDataString(commit)}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}";

    /// <summary>A failed answer as a one-line error that says what to do (the Hub's <c>X-Error-Code</c> decides where it gives one).</summary>
    private HubException Error(HttpResponseMessage response, string repoId, string revision, string? file)
    {
        var status = (int)response.StatusCode;
        var code = Header(response, "X-Error-Code");
        var page = $"{_endpoint}/{repoId}";
        const string HowToSetToken = "set HF_TOKEN (or save a token in $HF_HOME/token, as `hf auth login` does)";
        var hasToken = options.Token is not null;
        return (status, code) switch
        {
            (401 or 403, "GatedRepo") or (401, _) when file is not null => new HubException(HubErrorKind.Gated, hasToken
                ? $"'{repoId}' is gated and the token was refused ({status}) for '{file}': accept its conditions at {page} and {HowToSetToken} with a token of that account."
                : $"'{repoId}' is gated: '{file}' needs a token ({status}). Accept its conditions at {page} and {HowToSetToken}.") { StatusCode = status },
            (403, _) => new HubException(HubErrorKind.Gated,
                $"The token does not grant access to '{repoId}' (403): request access at {page}, or {HowToSetToken} with a token that has it.") { StatusCode = status },
            (401, _) => new HubException(HubErrorKind.Unauthorized, hasToken
                ? $"The Hub refused the token for '{repoId}' (401): check that HF_TOKEN (or $HF_HOME/token) holds a valid token that can read it."
                : $"Repository '{repoId}' was not found, or it is private or gated (the Hub answers 401 without a token): check the name, or {HowToSetToken}.") { StatusCode = status },
            (404, "RevisionNotFound") => new HubException(HubErrorKind.NotFound, $"Revision '{revision}' was not found in '{repoId}' (404).") { StatusCode = status },
            (404, "EntryNotFound") or (404, _) when file is not null => new HubException(HubErrorKind.NotFound, $"File '{file}' was not found in '{repoId}' at {revision} (404).") { StatusCode = status },
            (404, _) => new HubException(HubErrorKind.NotFound, $"Repository '{repoId}' was not found (404), or revision '{revision}' does not exist in it.") { StatusCode = status },
            _ => new HubException(HubErrorKind.Network,
                $"The Hub answered {status} {response.ReasonPhrase} for {(file is null ? $"'{repoId}'" : $"'{file}' of '{repoId}'")}{(status is >= 500 or 429 ? $" after {options.MaxRetries + 1} tries" : "")}.") { StatusCode = status },
        };
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values) ? values.FirstOrDefault() : null;

    /// <summary>An etag as a blob name: without the weak prefix and the quotes (huggingface_hub's normalization).</summary>
    public static string? NormalizeEtag(string? etag) => etag is null ? null : (etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag).Trim('"');
}

/// <summary>What <c>HEAD</c> told about one file: the LFS content's sha256 (<c>X-Linked-Etag</c>), the <c>ETag</c> of a file served directly, the size.</summary>
internal sealed record FileMetadata(string? Commit, string? LinkedEtag, string? Etag, long? Size);

/// <summary>The repository info the Hub answers (<c>sha</c>, <c>siblings</c>).</summary>
internal sealed record RepoInfo(
    [property: JsonPropertyName("sha")] string? Sha,
    [property: JsonPropertyName("siblings")] IReadOnlyList<RepoSibling>? Siblings);

/// <summary>One file of the repository (<c>rfilename</c>, <c>size</c>, <c>blobId</c>, <c>lfs</c>).</summary>
internal sealed record RepoSibling(
    [property: JsonPropertyName("rfilename")] string Path,
    [property: JsonPropertyName("size")] long? Size,
    [property: JsonPropertyName("blobId")] string? BlobId,
    [property: JsonPropertyName("lfs")] RepoLfs? Lfs);

/// <summary>An LFS file's content hash and size.</summary>
internal sealed record RepoLfs(
    [property: JsonPropertyName("sha256")] string? Sha256,
    [property: JsonPropertyName("size")] long? Size);

[JsonSerializable(typeof(RepoInfo))]
internal sealed partial class RepoInfoJson : JsonSerializerContext;
