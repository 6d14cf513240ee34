using System.Text.Json;
using OnnxLM.Cli;

namespace OnnxLM.Hub.Tests;

/// <summary>The HF_* variables are process-wide: the tests that set them run alone.</summary>
[CollectionDefinition(nameof(EnvironmentCollection), DisableParallelization = true)]
public sealed class EnvironmentCollection;

/// <summary><c>onnxlm pull</c> and <c>--model org/name</c> in-process against the fake hub (HF_ENDPOINT, HF_HUB_CACHE).</summary>
[Collection(nameof(EnvironmentCollection))]
public sealed class PullCliTests : HubTestBase, IDisposable
{
    private static readonly string[] Variables = ["HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE"];
    private readonly Dictionary<string, string?> _saved = Variables.ToDictionary(v => v, Environment.GetEnvironmentVariable);

    private void SetEnvironment(bool offline = false)
    {
        Environment.SetEnvironmentVariable("HF_ENDPOINT", Fake.Endpoint);
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", Cache.Path);
        Environment.SetEnvironmentVariable("HF_HOME", Path.Combine(Cache.Path, "home"));
        Environment.SetEnvironmentVariable("HF_TOKEN", null);
        Environment.SetEnvironmentVariable("HF_HUB_OFFLINE", offline ? "1" : null);
    }

    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.RunAsync(args, output, error, new StringReader(""));
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task PullJsonPrintsTheSnapshotAndFetchesOnlyTheDtype()
    {
        SetEnvironment();
        var (code, output, error) = await RunAsync("pull", Fixtures.CommunityId, "--dtype", "q4", "--json");
        Assert.True(code == 0, error);
        Assert.Equal("", error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        var repo = Fixtures.Community();
        Assert.Equal(Fixtures.CommunityId, root.GetProperty("repo").GetString());
        Assert.Equal(repo.Commit, root.GetProperty("commit").GetString());
        Assert.Equal("q4", root.GetProperty("dtype").GetString());
        var path = root.GetProperty("path").GetString()!;
        Assert.Equal(Path.Combine(RepoFolder(Fixtures.CommunityId), "snapshots", repo.Commit), path);
        var files = root.GetProperty("files").EnumerateArray().Select(f => f.GetString()!).ToList();
        Assert.Equal(8, files.Count);
        foreach (var file in files) Assert.Equal(repo.Files[file], File.ReadAllBytes(Path.Combine(path, file)));

        // Without --json: the folder on standard output, a summary on standard error; offline it is the same folder.
        SetEnvironment(offline: true);
        var (plainCode, plainOut, plainError) = await RunAsync("pull", Fixtures.CommunityId, "--dtype", "q4");
        Assert.True(plainCode == 0, plainError);
        Assert.Equal(path + Environment.NewLine, plainOut);
        Assert.Equal($"{Fixtures.CommunityId}@{repo.Commit[..12]} (q4): 8 files, 0.0 MB downloaded" + Environment.NewLine, plainError);
    }

    [Theory]
    [InlineData(false, "pull", "org/missing", "onnxlm: Repository 'org/missing' was not found, or it is private or gated (the Hub answers 401 without a token): check the name, or set HF_TOKEN")]
    [InlineData(false, "pull", "onnx-community/Tiny-Instruct-ONNX", "--dtype", "bnb4", "onnxlm: 'onnx-community/Tiny-Instruct-ONNX' has no bnb4 graph (onnx/model_bnb4.onnx); it has: fp32, fp16, q8, q4, q4f16.")]
    [InlineData(false, "pull", "org/gated", "onnxlm: 'org/gated' is gated:")]
    [InlineData(true, "generate", "--model", "org/plain", "x", "onnxlm: --model 'org/plain' is not a folder here; as a Hub repository: 'org/plain' at 'main' is not in the cache")]
    public async Task ErrorsAreOneLineOnStandardErrorWithExitCode2(bool offline, params string[] argsAndMessage)
    {
        SetEnvironment(offline);
        var (code, output, error) = await RunAsync(argsAndMessage[..^1]);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.StartsWith(argsAndMessage[^1], error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    [Fact]
    public async Task GenerateWithModelOrgNameDownloadsAndLoadsTheSnapshot()
    {
        Fake.Add(Fixtures.KjvTiny("onnxlm/kjv-tiny"));
        SetEnvironment();
        string[] generate = ["generate", "--temperature", "0", "--max-new-tokens", "8", "--provider", "cpu", "In the beginning"];
        var (code, output, error) = await RunAsync(["--model", "onnxlm/kjv-tiny", .. generate]);
        Assert.True(code == 0, error);
        var (localCode, local, localError) = await RunAsync(["--model", Path.Combine(Fixtures.RepoRoot, "models", "kjv-tiny"), .. generate]);
        Assert.True(localCode == 0, localError);
        Assert.StartsWith("In the beginning", output);
        Assert.Equal(local, output);
        Assert.Equal(1, Fake.Count("GET", "/cdn/"));

        // Cached now: the next run asks only for the revision, and offline asks nothing.
        var before = Fake.Requests.Count;
        Assert.Equal((0, local), (await RunAsync(["--model", "onnxlm/kjv-tiny", .. generate]) is var again ? (again.Code, again.Output) : default));
        Assert.Equal(before + 1, Fake.Requests.Count);
        SetEnvironment(offline: true);
        Assert.Equal((0, local), (await RunAsync(["--model", "onnxlm/kjv-tiny", .. generate]) is var off ? (off.Code, off.Output) : default));
        Assert.Equal(before + 1, Fake.Requests.Count);
    }

    public void Dispose()
    {
        foreach (var (name, value) in _saved) Environment.SetEnvironmentVariable(name, value);
    }
}
