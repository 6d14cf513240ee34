using System.Diagnostics;

namespace OnnxLM.Hub.Tests;

/// <summary>Cut transfers resume with Range, corrupt bytes never become a blob, tokens and gates, retries with backoff.</summary>
public sealed class HubFaultTests : HubTestBase
{
    private const string Data = "onnx/model_q4.onnx_data";

    private static string DataSha => FakeHub.Sha256(Fixtures.Community().Files[Data]);

    [Fact]
    public async Task ACutTransferIsKeptAndTheNextPullResumesFromItsLastByte()
    {
        Fake.Inject(DataSha, new Fault(CutAfter: 100_000));
        var e = await Assert.ThrowsAsync<HubException>(() => Hub(retries: 0).DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" }));
        Assert.Equal(HubErrorKind.Network, e.Kind);
        Assert.Contains($"Downloading '{Data}' of '{Fixtures.CommunityId}' failed after 1 tries", e.Message);
        var partial = Path.Combine(RepoFolder(Fixtures.CommunityId), "blobs", DataSha + ".incomplete");
        var kept = new FileInfo(partial).Length;
        Assert.InRange(kept, 1, 100_000);
        Assert.EndsWith($"the {kept} bytes received are kept and the next pull resumes from there.", e.Message);
        Assert.False(File.Exists(Path.Combine(RepoFolder(Fixtures.CommunityId), "snapshots", Fixtures.Community().Commit, Data)));

        var snapshot = await Hub(retries: 0).DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" });
        Assert.Contains(Fake.Requests, r => r.Path == "/cdn/" + DataSha && r.Range == $"bytes={kept}-");
        Assert.False(File.Exists(partial));
        AssertSameBytes(Fixtures.Community(), snapshot);
    }

    [Fact]
    public async Task ACutTransferResumesWithinTheSamePull()
    {
        Fake.Inject(DataSha, new Fault(CutAfter: 70_000));
        Fake.Inject(DataSha, new Fault(CutAfter: 50_000));
        var snapshot = await Hub(retries: 3).DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" });
        AssertSameBytes(Fixtures.Community(), snapshot);
        // Each try starts where the kept bytes end (how much of a cut response arrives is up to the network).
        var ranges = Fake.Requests.Where(r => r.Path == "/cdn/" + DataSha).Select(r => r.Range).ToList();
        Assert.Equal(3, ranges.Count);
        Assert.Null(ranges[0]);
        var starts = ranges.Skip(1).Select(r => long.Parse(r!["bytes=".Length..^1], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.InRange(starts[0], 1, 70_000);
        Assert.InRange(starts[1], starts[0], starts[0] + 50_000);
    }

    [Fact]
    public async Task CorruptBytesFailNamingTheFileAndLeaveNoBlobNorPartial()
    {
        Fake.Inject(DataSha, new Fault(Corrupt: true));
        var e = await Assert.ThrowsAsync<HubException>(() => Hub().DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" }));
        Assert.Equal(HubErrorKind.Integrity, e.Kind);
        Assert.StartsWith($"'{Data}' is corrupt: its hash is ", e.Message);
        Assert.EndsWith($", the Hub's is {DataSha}; the partial file was deleted, pull again.", e.Message);
        var blobs = Path.Combine(RepoFolder(Fixtures.CommunityId), "blobs");
        Assert.False(File.Exists(Path.Combine(blobs, DataSha)));
        Assert.False(File.Exists(Path.Combine(blobs, DataSha + ".incomplete")));

        // A small file is checked against its git sha1 the same way.
        Fake.Inject("tokenizer.json", new Fault(Corrupt: true));
        var small = await Assert.ThrowsAsync<HubException>(() => Hub().DownloadAsync("org/plain"));
        Assert.StartsWith("'tokenizer.json' is corrupt", small.Message);

        var snapshot = await Hub().DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" });
        AssertSameBytes(Fixtures.Community(), snapshot);
    }

    [Fact]
    public async Task AMissingRepoAnswers401WithoutATokenAnd404WithOne()
    {
        var anonymous = await Assert.ThrowsAsync<HubException>(() => Hub().DownloadAsync("org/missing"));
        Assert.Equal(HubErrorKind.Unauthorized, anonymous.Kind);
        Assert.Equal(401, anonymous.StatusCode);
        Assert.Equal("Repository 'org/missing' was not found, or it is private or gated (the Hub answers 401 without a token): check the name, or set HF_TOKEN (or save a token in $HF_HOME/token, as `hf auth login` does).", anonymous.Message);

        var withToken = await Assert.ThrowsAsync<HubException>(() => Hub(FakeHub.GoodToken).DownloadAsync("org/missing"));
        Assert.Equal(HubErrorKind.NotFound, withToken.Kind);
        Assert.Equal("Repository 'org/missing' was not found (404), or revision 'main' does not exist in it.", withToken.Message);

        var revision = await Assert.ThrowsAsync<HubException>(() => Hub().DownloadAsync("org/plain", new HubDownloadOptions { Revision = "v9" }));
        Assert.Equal("Revision 'v9' was not found in 'org/plain' (404).", revision.Message);

        // A private repository is like a missing one without the token, and downloads with it.
        Assert.Equal(HubErrorKind.Unauthorized, (await Assert.ThrowsAsync<HubException>(() => Hub().DownloadAsync("org/private"))).Kind);
        AssertSameBytes(Fixtures.Plain("org/private"), await Hub(FakeHub.GoodToken).DownloadAsync("org/private"));
    }

    [Fact]
    public async Task AGatedRepoSaysHowToSetATokenAndTheTokenNeverGoesToTheCdn()
    {
        var anonymous = await Assert.ThrowsAsync<HubException>(() => Hub().DownloadAsync("org/gated"));
        Assert.Equal(HubErrorKind.Gated, anonymous.Kind);
        Assert.Equal(401, anonymous.StatusCode);
        Assert.Matches($"^'org/gated' is gated: '.+' needs a token \\(401\\)\\. Accept its conditions at {Fake.Endpoint}/org/gated and set HF_TOKEN", anonymous.Message);

        var refused = await Assert.ThrowsAsync<HubException>(() => Hub("hf_other").DownloadAsync("org/gated"));
        Assert.Equal(HubErrorKind.Gated, refused.Kind);
        Assert.Equal(403, refused.StatusCode);
        Assert.Contains("set HF_TOKEN", refused.Message);

        var snapshot = await Hub(FakeHub.GoodToken).DownloadAsync("org/gated");
        AssertSameBytes(Fixtures.Plain("org/gated"), snapshot);
        Assert.All(Fake.Requests.Where(r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal)), r => Assert.Null(r.Authorization));
        Assert.Contains(Fake.Requests, r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal));
        Assert.Contains(Fake.Requests, r => r.Method == "HEAD" && r.Path.Contains("/resolve/", StringComparison.Ordinal) && r.Authorization == "Bearer " + FakeHub.GoodToken);
    }

    [Fact]
    public async Task ServerErrorsAreRetriedWithBackoffAndNotFoundIsNot()
    {
        Fake.Inject("config.json", new Fault(Status: 500));
        Fake.Inject("config.json", new Fault(Status: 503));
        Fake.Inject("/revision/main", new Fault(Status: 502));
        var snapshot = await Hub(retries: 2).DownloadAsync("org/plain");
        AssertSameBytes(Fixtures.Plain("org/plain"), snapshot);
        Assert.Equal(3, Fake.Count("HEAD", "/org/plain/resolve/" + snapshot.Commit + "/config.json"));
        Assert.Equal(2, Fake.Count("GET", "/api/models/org/plain/revision/main"));

        for (var i = 0; i < 3; i++) Fake.Inject("model.onnx", new Fault(Status: 500));
        using var other = new TempCache();
        var hub = new ModelHub(new ModelHubOptions { CacheDirectory = other.Path, Endpoint = new Uri(Fake.Endpoint), MaxRetries = 2, RetryDelay = TimeSpan.FromMilliseconds(10) });
        var e = await Assert.ThrowsAsync<HubException>(() => hub.DownloadAsync("org/plain"));
        Assert.Equal(HubErrorKind.Network, e.Kind);
        Assert.Equal(500, e.StatusCode);
        Assert.Equal("The Hub answered 500 Internal Server Error for 'model.onnx' of 'org/plain' after 3 tries.", e.Message);

        var before = Fake.Count("GET", "/api/models/org/missing");
        await Assert.ThrowsAsync<HubException>(() => Hub(FakeHub.GoodToken, retries: 3).DownloadAsync("org/missing"));
        Assert.Equal(before + 1, Fake.Count("GET", "/api/models/org/missing"));
    }

    [Fact]
    public async Task TooManyRequestsWaitsAsLongAsRetryAfterSays()
    {
        Fake.Inject("/revision/main", new Fault(Status: 429, RetryAfter: 1));
        var clock = Stopwatch.StartNew();
        var snapshot = await Hub(retries: 1).DownloadAsync("org/plain");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.95), $"waited {clock.Elapsed}, Retry-After said 1 s (the backoff alone is 10 ms)");
        Assert.Equal(2, Fake.Count("GET", "/api/models/org/plain/revision/main"));
        AssertSameBytes(Fixtures.Plain("org/plain"), snapshot);

        // The wait is capped by MaxRetryDelay whatever the header asks.
        var options = new ModelHubOptions { RetryDelay = TimeSpan.FromSeconds(1), MaxRetryDelay = TimeSpan.FromSeconds(3) };
        var http = new HubHttp(options);
        Assert.Equal(TimeSpan.FromSeconds(3), http.Backoff(0, TimeSpan.FromHours(1)));
        Assert.Equal(TimeSpan.FromSeconds(2), http.Backoff(1, null));
        Assert.Equal(TimeSpan.FromSeconds(3), http.Backoff(5, null));
    }
}
