using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace OnnxLM.Gateway.Tests;

/// <summary>Replicas that fill up, die or drain: the gateway routes around them and nothing hangs.</summary>
public sealed class FailoverTests
{
    /// <summary>Long requests (EOS banned, so they run to max_tokens) sent straight to a replica, bypassing the gateway.</summary>
    private static Task<HttpStatusCode>[] Saturate(string replica, int count, int tokens, CancellationToken ct)
    {
        using var model = LanguageModel.Load(Cluster.Model);
        var bias = model.Info.EosTokenIds.ToDictionary(id => id.ToString(System.Globalization.CultureInfo.InvariantCulture), _ => -100);
        return [.. Enumerable.Range(0, count).Select(async i =>
        {
            using var http = new HttpClient { BaseAddress = new Uri(replica), Timeout = TimeSpan.FromSeconds(60) };
            using var response = await http.PostAsJsonAsync("/v1/completions", new { prompt = $"In the beginning {i}", max_tokens = tokens, temperature = 0, logit_bias = bias }, ct);
            return response.StatusCode;
        })];
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"timed out waiting until {what}");
            await Task.Delay(50);
        }
    }

    private static async Task<JsonElement> HealthAsync(string replica)
    {
        using var http = new HttpClient { BaseAddress = new Uri(replica) };
        using var response = await http.GetAsync("/health");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    [Fact]
    public async Task NewConversationsSpillFromASaturatedReplica()
    {
        await using var cluster = await Cluster.StartAsync(gateway: o => o.SpillThreshold = 3);
        // Where each of 24 conversations belongs while the replicas are idle.
        var owners = new string?[24];
        for (var id = 0; id < owners.Length; id++) owners[id] = (await cluster.ChatAsync(Cluster.Opening(id), maxTokens: 1)).Backend;
        var full = owners.GroupBy(o => o).OrderByDescending(g => g.Count()).First().Key!;
        var theirs = Enumerable.Range(0, owners.Length).Where(id => owners[id] == full).ToList();
        Assert.True(theirs.Count >= 2, $"the busiest replica owns {theirs.Count} conversations");

        using var stop = new CancellationTokenSource();
        var saturating = Saturate(full, 6, 200, stop.Token);
        try
        {
            // Its queue is reported (4 waiting, 2 running) and the gateway has probed it since.
            await WaitForAsync(async () => (await HealthAsync(full)).GetProperty("waiting").GetInt32() >= 3, $"{full} reports its queue");
            await Cluster.SettleAsync();
            var spilled = new List<Turn>();
            foreach (var id in theirs)
            {
                spilled.Add(await cluster.ChatAsync(Cluster.Opening(id), maxTokens: 1));
            }

            Assert.True(Array.TrueForAll(saturating, t => !t.IsCompleted), "the saturating requests ended before the check; it proves nothing");
            Assert.All(spilled, t => Assert.NotEqual(full, t.Backend));
            // Spilling is consistent: the same conversation spills to the same replica while its owner stays full.
            var again = await cluster.ChatAsync(Cluster.Opening(theirs[0]), maxTokens: 1);
            Assert.Equal(spilled[0].Backend, again.Backend);
        }
        finally
        {
            stop.Cancel();
            await Task.WhenAll(saturating.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
        }

        // Once the owner is idle again, its conversations return to it.
        await WaitForAsync(async () => (await HealthAsync(full)).GetProperty("in_flight").GetInt32() == 0, $"{full} is idle");
        await Cluster.SettleAsync();
        Assert.Equal(full, (await cluster.ChatAsync(Cluster.Opening(theirs[0]), maxTokens: 1)).Backend);
    }

    [Fact]
    public async Task AKilledReplicasConversationsContinueElsewhere()
    {
        // Health probes far apart: the gateway learns of the death from the refused connections, not from a probe.
        await using var cluster = await Cluster.StartAsync(server: o => o.DrainTimeout = TimeSpan.Zero, gateway: o => o.HealthCheckInterval = TimeSpan.FromSeconds(30));
        var conversations = Enumerable.Range(0, 12).Select(Cluster.Opening).ToList();
        var owners = new string?[conversations.Count];
        for (var id = 0; id < conversations.Count; id++)
        {
            var turn = await cluster.ChatAsync(conversations[id], maxTokens: 2);
            owners[id] = turn.Backend;
            conversations[id].Add(new { role = "assistant", content = turn.Reply });
            conversations[id].Add(new { role = "user", content = "And then?" });
        }

        var victim = owners.GroupBy(o => o).OrderByDescending(g => g.Count()).First().Key!;
        var index = cluster.Addresses.IndexOf(victim);

        // Kill it while requests are in flight through the gateway: those may fail, but none may hang.
        using var http = new HttpClient { BaseAddress = cluster.Http.BaseAddress, Timeout = TimeSpan.FromSeconds(20) };
        var inFlight = Enumerable.Range(0, conversations.Count).Where(id => owners[id] == victim)
            .Select(id => cluster.ChatAsync(conversations[id], maxTokens: 60, expectSuccess: false, http: http)).ToList();
        await Task.Delay(100);
        await cluster.Replicas[index].DisposeAsync();
        var during = await Task.WhenAll(inFlight); // a timeout (TaskCanceledException) here is a hang

        // Later turns of every conversation, the victim's included, succeed; the victim's land elsewhere (with a cold cache).
        for (var id = 0; id < conversations.Count; id++)
        {
            var turn = await cluster.ChatAsync(conversations[id], maxTokens: 2);
            if (owners[id] == victim)
            {
                Assert.NotEqual(victim, turn.Backend);
            }
            else
            {
                Assert.Equal(owners[id], turn.Backend);
                Assert.True(turn.CachedTokens > 0, $"conversation {id} lost its cache on {turn.Backend}");
            }
        }

        // Requests in flight when it died may fail (the dying replica's own 500, the gateway's 502/504), but each was answered.
        Assert.All(during, t => Assert.True(t.Status is 200 or 500 or 502 or 503 or 504, $"status {t.Status}"));
        cluster.Replicas.RemoveAt(index);
    }

    [Fact]
    public async Task ADrainingReplicaGetsNoNewRequestsAndFinishesItsOwn()
    {
        await using var cluster = await Cluster.StartAsync(server: o => { o.DrainDelay = TimeSpan.FromSeconds(4); o.DrainTimeout = TimeSpan.FromSeconds(20); });
        var owners = new string?[18];
        for (var id = 0; id < owners.Length; id++) owners[id] = (await cluster.ChatAsync(Cluster.Opening(id), maxTokens: 1)).Backend;
        var drained = owners.GroupBy(o => o).OrderByDescending(g => g.Count()).First().Key!;
        var index = cluster.Addresses.IndexOf(drained);

        // A long request in flight on it, then it begins to stop.
        using var stop = new CancellationTokenSource();
        var running = Saturate(drained, 1, 150, stop.Token)[0];
        await WaitForAsync(async () => (await HealthAsync(drained)).GetProperty("running").GetInt32() >= 1, $"{drained} runs the long request");
        var stopping = cluster.Replicas[index].StopAsync();

        // At once (before any probe has seen it): a request that reaches it gets 503 draining, and the gateway sends it on.
        var health = await WaitForDrainingAsync(drained);
        Assert.Equal("draining", health);
        foreach (var id in Enumerable.Range(0, owners.Length).Where(id => owners[id] == drained))
        {
            var turn = await cluster.ChatAsync(Cluster.Opening(id), maxTokens: 1);
            Assert.NotEqual(drained, turn.Backend);
        }

        // Straight to it: refused with 503 and Retry-After.
        using (var direct = new HttpClient { BaseAddress = new Uri(drained) })
        {
            using var refused = await direct.PostAsJsonAsync("/v1/chat/completions", new { messages = Cluster.Opening(0), max_tokens = 1 });
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.NotNull(refused.Headers.RetryAfter);
            Assert.Contains("server_draining", await refused.Content.ReadAsStringAsync());
        }

        // The request in flight finished normally; then the replica stopped.
        Assert.Equal(HttpStatusCode.OK, await running);
        await stopping;
        cluster.Replicas.RemoveAt(index);
    }

    private static async Task<string> WaitForDrainingAsync(string replica)
    {
        string status = "";
        await WaitForAsync(async () => (status = (await HealthAsync(replica)).GetProperty("status").GetString()!) == "draining", $"{replica} drains");
        return status;
    }
}
