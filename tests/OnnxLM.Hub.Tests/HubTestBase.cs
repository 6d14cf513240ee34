namespace OnnxLM.Hub.Tests;

/// <summary>A fake hub with the fixture repositories and a fresh cache, per test.</summary>
public abstract class HubTestBase : IAsyncLifetime
{
    protected FakeHub Fake { get; private set; } = null!;

    protected TempCache Cache { get; } = new();

    public async Task InitializeAsync()
    {
        Fake = await FakeHub.StartAsync();
        Fake.Add(Fixtures.Community());
        Fake.Add(Fixtures.GenAi());
        Fake.Add(Fixtures.Plain("org/plain"));
        Fake.Add(Fixtures.Plain("org/gated") is var g ? new FakeRepo(g.Id, g.Files) { Gated = true } : null!);
        Fake.Add(Fixtures.Plain("org/private") is var p ? new FakeRepo(p.Id, p.Files) { Private = true } : null!);
    }

    public async Task DisposeAsync()
    {
        await Fake.DisposeAsync();
        Cache.Dispose();
    }

    protected ModelHub Hub(string? token = null, int retries = 2, bool offline = false) => new(new ModelHubOptions
    {
        CacheDirectory = Cache.Path,
        Endpoint = new Uri(Fake.Endpoint),
        Token = token,
        Offline = offline,
        MaxRetries = retries,
        RetryDelay = TimeSpan.FromMilliseconds(10),
        MaxRetryDelay = TimeSpan.FromSeconds(5),
    });

    protected string RepoFolder(string repoId) => Path.Combine(Cache.Path, "models--" + repoId.Replace("/", "--", StringComparison.Ordinal));

    /// <summary>The served bytes of each file equal the snapshot's.</summary>
    protected static void AssertSameBytes(FakeRepo repo, HubSnapshot snapshot)
    {
        foreach (var file in snapshot.Files)
        {
            Assert.Equal(repo.Files[file], File.ReadAllBytes(Path.Combine(snapshot.Path, file)));
        }
    }
}
