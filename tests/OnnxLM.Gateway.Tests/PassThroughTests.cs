using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace OnnxLM.Gateway.Tests;

/// <summary>What passes through the gateway untouched: server-sent events as they are written, Authorization, errors.</summary>
public sealed class PassThroughTests
{
    [Fact]
    public async Task StreamsServerSentEventsAndForwardsAuthorization()
    {
        await using var cluster = await Cluster.StartAsync(replicas: 2, server: o => o.ApiKeys.Add("secret"));
        var body = new { model = "kjv-tiny", messages = Cluster.Opening(1), max_tokens = 24, temperature = 0, stream = true, stream_options = new { include_usage = true } };

        // The key is the replicas' to check: without it, their 401 comes back through the gateway.
        using (var refused = await cluster.Http.PostAsJsonAsync("/v1/chat/completions", body))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Contains("invalid_api_key", await refused.Content.ReadAsStringAsync());
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "secret");
        using var response = await cluster.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var backend = response.Headers.GetValues(GatewayHeaders.Backend).Single();

        // Read event by event as they arrive.
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new StringBuilder();
        var events = 0;
        JsonElement? usage = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            var data = line["data: ".Length..];
            if (data == "[DONE]") break;
            events++;
            var chunk = JsonDocument.Parse(data).RootElement;
            if (chunk.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) usage = u.Clone();
            foreach (var choice in chunk.GetProperty("choices").EnumerateArray())
            {
                if (choice.GetProperty("delta").TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) text.Append(c.GetString());
            }
        }

        Assert.True(events > 3, $"{events} events");
        Assert.NotNull(usage);
        Assert.True(usage.Value.GetProperty("prompt_tokens_details").TryGetProperty("cached_tokens", out _));

        // The same request answered by the same replica directly, not streamed: the same text.
        using var direct = new HttpClient { BaseAddress = new Uri(backend) };
        direct.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "secret");
        using var plain = await direct.PostAsJsonAsync("/v1/chat/completions", new { model = "kjv-tiny", messages = Cluster.Opening(1), max_tokens = 24, temperature = 0 });
        var expected = JsonDocument.Parse(await plain.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        Assert.Equal(expected, text.ToString());
    }

    [Fact]
    public async Task RefusesABodyOverItsLimitAndPassesOtherPaths()
    {
        await using var cluster = await Cluster.StartAsync(replicas: 2, gateway: o => o.MaxRequestBodyBytes = 2048);
        using var large = await cluster.Http.PostAsync("/v1/completions", new StringContent("{\"prompt\": \"" + new string('a', 4096) + "\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.StatusCode);
        Assert.Contains("request_too_large", await large.Content.ReadAsStringAsync());

        // A path without a key (the model list) is served by some replica.
        using var models = await cluster.Http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        Assert.Contains(models.Headers.GetValues(GatewayHeaders.Backend).Single(), cluster.Addresses);
        // Completions report cached_tokens too: 0, since they share the decode loop and keep no conversation cache.
        using var completion = await cluster.Http.PostAsJsonAsync("/v1/completions", new { prompt = "In the beginning", max_tokens = 2, temperature = 0 });
        var usage = JsonDocument.Parse(await completion.Content.ReadAsStringAsync()).RootElement.GetProperty("usage");
        Assert.Equal(0, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > 0);
        // A replica's own 400 passes through.
        using var bad = await cluster.Http.PostAsync("/v1/completions", new StringContent("{\"prompt\": 5}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }
}
