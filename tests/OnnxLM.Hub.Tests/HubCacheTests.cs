using System.Text;

namespace OnnxLM.Hub.Tests;

/// <summary>The cache shared with Python: offline use through refs/, a folder Python wrote used without a byte, cached files never fetched twice.</summary>
public sealed class HubCacheTests : HubTestBase
{
    [Fact]
    public async Task OfflineMakesNoRequestAndResolvesTheRevisionThroughRefs()
    {
        var online = await Hub().DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" });
        var before = Fake.Requests.Count;

        var offline = await Hub(offline: true).DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" });
        Assert.Equal(before, Fake.Requests.Count);
        Assert.Equal(online.Path, offline.Path);
        Assert.Equal(online.Files, offline.Files);
        Assert.Equal(0, offline.BytesDownloaded);

        // Another snapshot beside it: offline follows refs/main to it, not the folder that happens to be there first.
        var folder = RepoFolder(Fixtures.CommunityId);
        var other = new string('b', 40);
        Directory.CreateDirectory(Path.Combine(folder, "snapshots", other, "onnx"));
        foreach (var file in online.Files) File.Copy(Path.Combine(online.Path, file), Path.Combine(folder, "snapshots", other, file));
        File.WriteAllText(Path.Combine(folder, "refs", "main"), other);
        Assert.Equal(other, (await Hub(offline: true).DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" })).Commit);
        // A commit sha is its own revision, with no ref.
        Assert.Equal(online.Commit, (await Hub(offline: true).DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Revision = online.Commit, Dtype = "q4" })).Commit);
        Assert.Equal(before, Fake.Requests.Count);
    }

    [Fact]
    public async Task OfflineAndNotCachedFailsNamingTheCacheWithoutARequest()
    {
        var e = await Assert.ThrowsAsync<HubException>(() => Hub(offline: true).DownloadAsync("org/plain"));
        Assert.Equal(HubErrorKind.Offline, e.Kind);
        Assert.Equal($"'org/plain' at 'main' is not in the cache ({RepoFolder("org/plain")}) and the Hub cannot be asked: offline (HF_HUB_OFFLINE is set).", e.Message);

        await Hub().DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" });
        var v2 = await Assert.ThrowsAsync<HubException>(() => Hub(offline: true).DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Revision = "v2" }));
        Assert.Equal(HubErrorKind.Offline, v2.Kind);
        // Offline, only the dtypes in the cache exist.
        var fp16 = await Assert.ThrowsAsync<HubException>(() => Hub(offline: true).DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "fp16" }));
        Assert.EndsWith("it has: q4.", fp16.Message);
        Assert.DoesNotContain(Fake.Requests, r => r.Path.Contains("org/plain", StringComparison.Ordinal) || r.Path.Contains("v2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ACacheWrittenInPythonsLayoutIsUsedWithoutDownloadingAByte()
    {
        // As huggingface_hub writes it: blobs named by sha256 / git sha1, relative links from snapshots/<commit>, refs/main.
        var repo = Fixtures.Community();
        var folder = RepoFolder(Fixtures.CommunityId);
        string[] files = ["config.json", "generation_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "onnx/model_q4.onnx", "onnx/model_q4.onnx_data", "onnx/model_q4.onnx_data_1"];
        foreach (var file in files)
        {
            var etag = repo.IsLfs(file) ? FakeHub.Sha256(repo.Files[file]) : FakeHub.GitSha1(repo.Files[file]);
            Directory.CreateDirectory(Path.Combine(folder, "blobs"));
            File.WriteAllBytes(Path.Combine(folder, "blobs", etag), repo.Files[file]);
            var pointer = Path.Combine(folder, "snapshots", repo.Commit, file);
            Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
            File.CreateSymbolicLink(pointer, (file.Contains('/') ? "../../../blobs/" : "../../blobs/") + etag);
        }

        Directory.CreateDirectory(Path.Combine(folder, "refs"));
        File.WriteAllText(Path.Combine(folder, "refs", "main"), repo.Commit);

        var snapshot = await Hub().DownloadAsync(Fixtures.CommunityId);
        Assert.Equal(0, snapshot.BytesDownloaded);
        Assert.Equal(files.Order(StringComparer.Ordinal), snapshot.Files);
        Assert.Equal(0, Fake.Count("HEAD", "/resolve/"));
        Assert.Equal(0, Fake.Count("GET", "/cdn/"));
        Assert.Single(Fake.Requests); // the repository info, which resolves main to the commit
        AssertSameBytes(repo, snapshot);

        var offline = await Hub(offline: true).DownloadAsync(Fixtures.CommunityId);
        Assert.Equal(snapshot.Path, offline.Path);
    }

    [Fact]
    public async Task AnotherDtypeOfTheSameCommitFetchesOnlyItsOwnGraphAndABlobPresentIsLinkedNotFetched()
    {
        var repo = Fixtures.Community();
        await Hub().DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" });
        var fp16 = await Hub().DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "fp16" });
        Assert.Equal(repo.Files["onnx/model_fp16.onnx"].Length, fp16.BytesDownloaded);
        Assert.Equal(4, Fake.Count("GET", "/cdn/"));

        // Same content under a new commit (main moved): HEAD tells the etag, the blob is there, nothing is fetched.
        var moved = new FakeRepo(Fixtures.CommunityId, repo.Files) { Commit = new string('c', 40) };
        Fake.Add(moved);
        var next = await Hub().DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" });
        Assert.Equal(moved.Commit, next.Commit);
        Assert.Equal(0, next.BytesDownloaded);
        Assert.Equal(4, Fake.Count("GET", "/cdn/"));
        Assert.Equal(moved.Commit, File.ReadAllText(Path.Combine(RepoFolder(Fixtures.CommunityId), "refs", "main")));
        AssertSameBytes(moved, next);
    }

    [Fact]
    public async Task WhenTheHubCannotBeReachedTheCachedRevisionIsUsed()
    {
        await Hub().DownloadAsync("org/plain");
        var unreachable = new ModelHub(new ModelHubOptions { CacheDirectory = Cache.Path, Endpoint = new Uri("http://127.0.0.1:1"), MaxRetries = 0 });
        var snapshot = await unreachable.DownloadAsync("org/plain");
        Assert.Equal(Fixtures.Plain("org/plain").Commit, snapshot.Commit);
        Assert.Equal(Encoding.UTF8.GetString(Fixtures.Plain("org/plain").Files["config.json"]), File.ReadAllText(Path.Combine(snapshot.Path, "config.json")));

        var e = await Assert.ThrowsAsync<HubException>(() => unreachable.DownloadAsync("org/other"));
        Assert.Equal(HubErrorKind.Network, e.Kind);
        Assert.StartsWith("Could not reach the Hub at http://127.0.0.1:1 after 1 tries", e.Message);
    }

    [Fact]
    public async Task ABlobLockedByAnotherWriterIsWaitedFor()
    {
        // huggingface_hub (or another onnxlm) holds .locks/models--org--plain/<etag>.lock while it writes that blob.
        var model = Fixtures.Plain("org/plain").Files["model.onnx"];
        var locks = Path.Combine(Cache.Path, ".locks", "models--org--plain");
        Directory.CreateDirectory(locks);
        var held = new FileStream(Path.Combine(locks, FakeHub.Sha256(model) + ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        var pull = Hub().DownloadAsync("org/plain");
        await Task.Delay(700);
        Assert.False(pull.IsCompleted);
        Assert.Equal(0, Fake.Count("GET", "/cdn/"));
        await held.DisposeAsync();
        var snapshot = await pull.WaitAsync(TimeSpan.FromSeconds(30));
        AssertSameBytes(Fixtures.Plain("org/plain"), snapshot);
    }
}
