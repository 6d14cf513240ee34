namespace OnnxLM.Hub.Tests;

/// <summary>Which files a pull fetches in each layout, the cache layout it writes, its progress reports.</summary>
public sealed class HubDownloadTests : HubTestBase
{
    private static readonly string[] Support = ["config.json", "generation_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"];

    [Fact]
    public async Task DownloadsOnlyTheChosenDtypesGraphAndItsSplitData()
    {
        var repo = Fixtures.Community();
        var snapshot = await Hub().DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" });

        string[] expected = [.. Support, "onnx/model_q4.onnx", "onnx/model_q4.onnx_data", "onnx/model_q4.onnx_data_1"];
        Assert.Equal(expected.Order(StringComparer.Ordinal), snapshot.Files);
        Assert.Equal("q4", snapshot.Dtype);
        Assert.Equal(repo.Commit, snapshot.Commit);
        Assert.Equal(snapshot.Path, snapshot.ModelPath);
        AssertSameBytes(repo, snapshot);
        Assert.Equal(expected.Sum(f => (long)repo.Files[f].Length), snapshot.BytesDownloaded);

        // No request touched another graph, the README or .gitattributes; only the three LFS files went to the CDN.
        Assert.DoesNotContain(Fake.Requests, r => r.Path.Contains("model.onnx", StringComparison.Ordinal) || r.Path.Contains("fp16", StringComparison.Ordinal)
            || r.Path.Contains("quantized", StringComparison.Ordinal) || r.Path.Contains("q4f16", StringComparison.Ordinal) || r.Path.Contains("README", StringComparison.Ordinal));
        Assert.Equal(3, Fake.Count("GET", "/cdn/"));
        Assert.Equal(expected.Length, Fake.Count("HEAD", "/resolve/"));
        var onDisk = Directory.EnumerateFiles(snapshot.Path, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(snapshot.Path, f).Replace('\\', '/'));
        Assert.Equal(expected.Order(StringComparer.Ordinal), onDisk.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task WithoutADtypeTheDefaultOrderPicksQ4AndEachDtypeMapsToTransformersJsFileNames()
    {
        var snapshot = await Hub().DownloadAsync(Fixtures.CommunityId);
        Assert.Equal("q4", snapshot.Dtype);
        // The loader's CPU order, so that a pulled folder holds the graph LanguageModel.Load would pick from the whole repository.
        Assert.Equal(["q4", "q8", "int8", "uint8", "fp32", "fp16", "q4f16", "bnb4"], ModelHub.DefaultDtypeOrder);
        Assert.Equal(LanguageModelOptions.CpuDtypeOrder, ModelHub.DefaultDtypeOrder);

        foreach (var (dtype, graph) in new[] { ("fp32", "onnx/model.onnx"), ("fp16", "onnx/model_fp16.onnx"), ("q8", "onnx/model_quantized.onnx"), ("q4f16", "onnx/model_q4f16.onnx") })
        {
            var s = await Hub().DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = dtype });
            Assert.Equal(dtype, s.Dtype);
            Assert.Contains(graph, s.Files);
            Assert.Single(s.Files, f => f.StartsWith("onnx/", StringComparison.Ordinal) && f.EndsWith(".onnx", StringComparison.Ordinal));
            if (dtype == "fp32") Assert.Contains("onnx/model.onnx_data", s.Files);
            else Assert.DoesNotContain(s.Files, f => f.Contains("_data", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("bnb4", "has no bnb4 graph (onnx/model_bnb4.onnx); it has: fp32, fp16, q8, q4, q4f16.")]
    [InlineData("int8", "has no int8 graph (onnx/model_int8.onnx); it has: fp32, fp16, q8, q4, q4f16.")]
    [InlineData("q3", "Unknown dtype 'q3': expected one of fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4; 'onnx-community/Tiny-Instruct-ONNX' has fp32, fp16, q8, q4, q4f16.")]
    public async Task ADtypeTheRepoLacksFailsListingTheDtypesItHasBeforeAnyFileRequest(string dtype, string message)
    {
        var e = await Assert.ThrowsAsync<HubException>(() => Hub().DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = dtype }));
        Assert.Equal(HubErrorKind.NoMatchingFiles, e.Kind);
        Assert.EndsWith(message, e.Message);
        Assert.Equal(0, Fake.Count("HEAD", "/resolve/"));
    }

    [Fact]
    public async Task TheCacheLayoutIsHuggingfaceHubs()
    {
        var repo = Fixtures.Community();
        var snapshot = await Hub().DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" });
        var folder = RepoFolder(Fixtures.CommunityId);
        Assert.Equal(Path.Combine(folder, "snapshots", repo.Commit), snapshot.Path);
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(folder, "refs", "main")));

        foreach (var file in snapshot.Files)
        {
            // LFS files are named by their sha256, small files by their git blob sha1, each computed here from the served bytes.
            var content = repo.Files[file];
            var etag = repo.IsLfs(file) ? FakeHub.Sha256(content) : FakeHub.GitSha1(content);
            var pointer = new FileInfo(Path.Combine(snapshot.Path, file));
            var up = string.Concat(Enumerable.Repeat("../", 2 + file.Count(c => c == '/')));
            Assert.Equal(up + "blobs/" + etag, pointer.LinkTarget?.Replace('\\', '/'));
            Assert.Equal(content, File.ReadAllBytes(Path.Combine(folder, "blobs", etag)));
            Assert.True(File.Exists(Path.Combine(Cache.Path, ".locks", "models--onnx-community--Tiny-Instruct-ONNX", etag + ".lock")));
        }

        Assert.Equal(snapshot.Files.Count, Directory.GetFiles(Path.Combine(folder, "blobs")).Length);
        Assert.Empty(Directory.GetFiles(Path.Combine(folder, "blobs"), "*.incomplete"));
    }

    [Fact]
    public async Task AClientThatFollowsRedirectsStillNamesAndChecksLfsBlobsBySha256()
    {
        // Following the redirect, HEAD sees the CDN's own ETag: the sha256 must come from the listing instead.
        using var client = new HttpClient();
        var repo = Fixtures.Community();
        var hub = new ModelHub(new ModelHubOptions { CacheDirectory = Cache.Path, Endpoint = new Uri(Fake.Endpoint), HttpClient = client });
        var snapshot = await hub.DownloadAsync(Fixtures.CommunityId, new HubDownloadOptions { Dtype = "q4" });
        AssertSameBytes(repo, snapshot);
        Assert.True(File.Exists(Path.Combine(RepoFolder(Fixtures.CommunityId), "blobs", FakeHub.Sha256(repo.Files["onnx/model_q4.onnx_data"]))));
        Assert.Contains(Fake.Requests, r => r.Method == "HEAD" && r.Path.StartsWith("/cdn/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task GenAiRepoDownloadsOneVariantFolderTheCpuOneByDefault()
    {
        var repo = Fixtures.GenAi();
        var snapshot = await Hub().DownloadAsync(Fixtures.GenAiId);
        Assert.Equal(Fixtures.CpuVariant, snapshot.Variant);
        Assert.Equal(Path.Combine(snapshot.Path, "cpu_and_mobile", "cpu-int4-rtn-block-32-acc-level-4"), snapshot.ModelPath);
        Assert.Equal(repo.Files.Keys.Where(f => f.StartsWith(Fixtures.CpuVariant + "/", StringComparison.Ordinal)).Order(StringComparer.Ordinal), snapshot.Files);
        AssertSameBytes(repo, snapshot);
        Assert.DoesNotContain(Fake.Requests, r => r.Path.Contains("cuda", StringComparison.Ordinal) || r.Path.Contains("README", StringComparison.Ordinal));

        var cuda = await Hub().DownloadAsync(Fixtures.GenAiId, new HubDownloadOptions { Variant = "cuda-int4-rtn-block-32" });
        Assert.Equal(Fixtures.CudaVariant, cuda.Variant);
        Assert.Equal(4, cuda.Files.Count);

        var e = await Assert.ThrowsAsync<HubException>(() => Hub().DownloadAsync(Fixtures.GenAiId, new HubDownloadOptions { Variant = "dml" }));
        Assert.EndsWith($"has no variant 'dml'; it has: {Fixtures.CpuVariant}, {Fixtures.CudaVariant}.", e.Message);
        var d = await Assert.ThrowsAsync<HubException>(() => Hub().DownloadAsync(Fixtures.GenAiId, new HubDownloadOptions { Dtype = "q4" }));
        Assert.Contains("give a variant instead of dtype 'q4'", d.Message);
    }

    [Fact]
    public async Task PlainRepoDownloadsItsRootGraphAndProgressAddsUpToTheTotal()
    {
        var repo = Fixtures.Plain("org/plain");
        var reports = new List<HubProgress>();
        var snapshot = await Hub().DownloadAsync("org/plain", progress: new Collect(reports));
        Assert.Equal(["config.json", "model.onnx", "tokenizer.json"], snapshot.Files);
        Assert.Null(snapshot.Dtype);
        AssertSameBytes(repo, snapshot);

        long total = repo.Files.Values.Sum(v => (long)v.Length);
        Assert.All(reports, r => Assert.Equal(total, r.BytesTotal));
        Assert.Equal(total, reports.Max(r => r.BytesDone));
        foreach (var file in snapshot.Files)
        {
            Assert.Equal(repo.Files[file].Length, reports.Where(r => r.File == file).Max(r => r.FileBytesDone));
        }

        var e = await Assert.ThrowsAsync<HubException>(() => Hub().DownloadAsync("org/plain", new HubDownloadOptions { Dtype = "q4" }));
        Assert.Contains("keeps one graph (model.onnx)", e.Message);
    }

    [Fact]
    public async Task ARenamedRepositoryIsFollowedThroughItsRelativeRedirects()
    {
        Fake.Rename("org/old-name", "org/plain");
        var snapshot = await Hub().DownloadAsync("org/old-name");
        AssertSameBytes(Fixtures.Plain("org/plain"), snapshot);
        Assert.StartsWith(RepoFolder("org/old-name"), snapshot.Path);
        Assert.Equal(1, Fake.Count("GET", "/api/models/org/old-name/"));
        Assert.Equal(1, Fake.Count("GET", "/api/models/org/plain/"));
    }

    [Fact]
    public async Task APathThatClimbsOutOfTheSnapshotIsRefused()
    {
        Fake.Add(new FakeRepo("org/hostile", new Dictionary<string, byte[]>
        {
            ["../../../escape/genai_config.json"] = "{}"u8.ToArray(),
            ["../../../escape/model.onnx"] = Fixtures.Bytes(1, 100),
        }));
        var e = await Assert.ThrowsAsync<HubException>(() => Hub().DownloadAsync("org/hostile"));
        Assert.Equal(HubErrorKind.Integrity, e.Kind);
        Assert.Equal("The Hub's answer for 'org/hostile' holds an unsafe path '../../../escape/genai_config.json'; nothing was written for it.", e.Message);
        Assert.False(Directory.Exists(Path.Combine(Cache.Path, "..", "escape")));
        Assert.Equal(0, Fake.Count("HEAD", "/resolve/"));
    }

    [Theory]
    [InlineData("no-slash-is-fine-but-this--is-not")]
    [InlineData("a/b/c")]
    [InlineData("../etc")]
    public async Task ABadRepoIdIsRefusedBeforeAnyRequest(string repoId)
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => Hub().DownloadAsync(repoId));
        Assert.Contains($"'{repoId}' is not a Hub repository id", e.Message);
        Assert.Empty(Fake.Requests);
    }

    /// <summary>Collects reports on the calling thread (Progress&lt;T&gt; would post them later).</summary>
    private sealed class Collect(List<HubProgress> into) : IProgress<HubProgress>
    {
        public void Report(HubProgress value)
        {
            lock (into) into.Add(value);
        }
    }
}
