namespace OnnxLM.Hub.Tests;

/// <summary>The environment as huggingface_hub reads it: HF_HUB_CACHE over HF_HOME, the token file, offline values, the endpoint.</summary>
public sealed class ModelHubOptionsTests : IDisposable
{
    private readonly TempCache _home = new();

    [Fact]
    public void HfHubCacheWinsOverHfHomeAndHfHomeHoldsHubAndToken()
    {
        var home = _home.Path;
        Directory.CreateDirectory(home);
        File.WriteAllText(Path.Combine(home, "token"), "hf_fromfile\n");
        var env = new Dictionary<string, string?> { ["HF_HOME"] = home };
        var options = ModelHubOptions.FromEnvironment(n => env.GetValueOrDefault(n));
        Assert.Equal(Path.Combine(home, "hub"), options.CacheDirectory);
        Assert.Equal("hf_fromfile", options.Token);
        Assert.Equal(new Uri(ModelHubOptions.DefaultEndpoint), options.Endpoint);
        Assert.False(options.Offline);

        env["HF_HUB_CACHE"] = "/elsewhere/hub";
        env["HF_TOKEN"] = "hf_fromenv";
        env["HF_ENDPOINT"] = "http://127.0.0.1:5555/";
        options = ModelHubOptions.FromEnvironment(n => env.GetValueOrDefault(n));
        Assert.Equal("/elsewhere/hub", options.CacheDirectory);
        Assert.Equal("hf_fromenv", options.Token);
        Assert.Equal(new Uri("http://127.0.0.1:5555"), options.Endpoint);
    }

    [Fact]
    public void WithoutVariablesTheCacheIsUnderXdgCacheHome()
    {
        var env = new Dictionary<string, string?> { ["XDG_CACHE_HOME"] = "/xdg" };
        var options = ModelHubOptions.FromEnvironment(n => env.GetValueOrDefault(n));
        Assert.Equal(Path.Combine("/xdg", "huggingface", "hub"), options.CacheDirectory);
        Assert.Null(options.Token);
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("ON", true)]
    [InlineData("yes", true)]
    [InlineData("True", true)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    [InlineData("", false)]
    public void OfflineTakesHuggingfaceHubsTrueValues(string value, bool offline)
    {
        var env = new Dictionary<string, string?> { ["HF_HOME"] = _home.Path, ["HF_HUB_OFFLINE"] = value };
        Assert.Equal(offline, ModelHubOptions.FromEnvironment(n => env.GetValueOrDefault(n)).Offline);
    }

    [Fact]
    public void BadValuesAreRefusedNamingTheOption()
    {
        var options = new ModelHubOptions();
        Assert.Equal("MaxParallelDownloads", Assert.ThrowsAny<ArgumentException>(() => options.MaxParallelDownloads = 0).ParamName);
        Assert.Equal("MaxRetries", Assert.ThrowsAny<ArgumentException>(() => options.MaxRetries = -1).ParamName);
        Assert.Contains("must be an absolute http(s) address", Assert.Throws<ArgumentException>(() => options.Endpoint = new Uri("ftp://x")).Message);
        Assert.Equal("Revision", Assert.ThrowsAny<ArgumentException>(() => new HubDownloadOptions { Revision = " " }).ParamName);
        var env = new Dictionary<string, string?> { ["HF_HOME"] = _home.Path, ["HF_ENDPOINT"] = "not a url" };
        Assert.Contains("HF_ENDPOINT 'not a url'", Assert.Throws<ArgumentException>(() => ModelHubOptions.FromEnvironment(n => env.GetValueOrDefault(n))).Message);
    }

    public void Dispose() => _home.Dispose();
}
