using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using OnnxLM.Hosting;
using OnnxLM.Server;

namespace OnnxLM.Gateway.Tests;

/// <summary>Replicas of onnxlm serve on kjv-tiny (in-process Kestrel on loopback) and a gateway in front of them.</summary>
internal sealed class Cluster : IAsyncDisposable
{
    private static readonly string Root = FindRoot();

    /// <summary>The kjv-tiny model folder.</summary>
    public static readonly string Model = Path.Combine(Root, "models", "kjv-tiny");

    private Cluster(List<WebApplication> replicas, WebApplication gateway)
    {
        Replicas = replicas;
        Addresses = [.. replicas.Select(r => r.Urls.First().TrimEnd('/'))];
        GatewayApp = gateway;
        Http = new HttpClient { BaseAddress = new Uri(gateway.Urls.First()), Timeout = TimeSpan.FromSeconds(30) };
    }

    public List<WebApplication> Replicas { get; }

    /// <summary>Each replica's base address, as the gateway names it in <see cref="GatewayHeaders.Backend"/>.</summary>
    public List<string> Addresses { get; }

    public WebApplication GatewayApp { get; }

    /// <summary>A client of the gateway.</summary>
    public HttpClient Http { get; }

    public static async Task<Cluster> StartAsync(int replicas = 3, Action<OnnxLMServerOptions>? server = null, Action<OnnxLMOptions>? model = null,
        Action<OnnxLMGatewayOptions>? gateway = null)
    {
        var apps = new List<WebApplication>();
        for (var i = 0; i < replicas; i++)
        {
            var app = OnnxLMServer.Create(Model, "kjv-tiny", "http://127.0.0.1:0", o =>
            {
                o.Playground = false;
                server?.Invoke(o);
            }, o =>
            {
                o.ExecutionProvider = ExecutionProvider.Cpu;
                o.IntraOpThreadCount = 1;
                o.MaxConcurrentSequences = 2; // batching on: a small MaxBatchSize
                o.CachedConversations = 16;
                model?.Invoke(o);
            });
            await app.StartAsync();
            apps.Add(app);
        }

        var proxy = OnnxLMGateway.Create("http://127.0.0.1:0", o =>
        {
            foreach (var app in apps) o.Backends.Add(new Uri(app.Urls.First()));
            o.HealthCheckInterval = TimeSpan.FromMilliseconds(200);
            o.HealthCheckTimeout = TimeSpan.FromSeconds(5); // a loaded CI machine answers slowly
            gateway?.Invoke(o);
        });
        await proxy.StartAsync();
        return new Cluster(apps, proxy);
    }

    /// <summary>Waits until every replica has answered a health probe (the gateway's view of them is known).</summary>
    public static Task SettleAsync() => Task.Delay(600);

    /// <summary>One chat turn through the gateway: the reply, the backend that served it, and usage.</summary>
    public async Task<Turn> ChatAsync(IReadOnlyList<object> messages, int maxTokens = 4, bool expectSuccess = true, HttpClient? http = null)
    {
        using var response = await (http ?? Http).PostAsJsonAsync("/v1/chat/completions", new { model = "kjv-tiny", messages, max_tokens = maxTokens, temperature = 0 });
        var text = await response.Content.ReadAsStringAsync();
        if (expectSuccess) Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        var backend = response.Headers.TryGetValues(GatewayHeaders.Backend, out var values) ? values.First() : null;
        if (!response.IsSuccessStatusCode) return new Turn((int)response.StatusCode, backend, "", 0, 0);
        var root = JsonDocument.Parse(text).RootElement;
        var usage = root.GetProperty("usage");
        return new Turn((int)response.StatusCode, backend, root.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString() ?? "",
            usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    /// <summary>The messages of conversation <paramref name="id"/>'s first turn (distinct openings, so distinct routes).</summary>
    public static List<object> Opening(int id) =>
    [
        new { role = "system", content = "You answer in the words of the King James Bible." },
        new { role = "user", content = $"Tell me of the {Words[id % Words.Length]} of the {Places[id / Words.Length % Places.Length]}, part {id}." },
    ];

    private static readonly string[] Words = ["light", "waters", "firmament", "seed", "fruit", "beasts", "fowl", "heaven", "earth", "darkness"];
    private static readonly string[] Places = ["land", "sea", "mountain", "valley", "river", "city"];

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await GatewayApp.DisposeAsync();
        foreach (var app in Replicas) await app.DisposeAsync();
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OnnxLM.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("OnnxLM.sln not found");
    }
}

/// <summary>One answered chat turn.</summary>
internal sealed record Turn(int Status, string? Backend, string Reply, int PromptTokens, int CachedTokens);
