using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OnnxLM.Hosting;

namespace OnnxLM.Server.Tests;

/// <summary>The endpoints in an application of the user's own, and the /metrics page's text format.</summary>
public sealed class HostingTests
{
    [Fact]
    public async Task AnApplicationMapsTheEndpointsNextToItsOwn()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddKeyedOnnxLM("kjv-tiny", o =>
        {
            o.ModelPath = ServerTests.Model;
            o.ExecutionProvider = ExecutionProvider.Cpu;
        });
        builder.Services.AddOnnxLMOpenAI(o =>
        {
            o.Models.Add("kjv-tiny");
            o.Playground = false;
        });
        // The application's own JSON settings are its own: the OpenAI responses keep OpenAI's names.
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.KebabCaseUpper);
        await using var app = builder.Build();
        app.MapPost("/notes", async (HttpRequest request) => "noted: " + await new StreamReader(request.Body).ReadToEndAsync());
        app.MapOnnxLMOpenAI();
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };

        using var response = await http.PostAsJsonAsync("/v1/completions", new { prompt = "And God said", max_tokens = 6, temperature = 0 });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        var completion = JsonDocument.Parse(text).RootElement;
        using var reference = LanguageModel.Load(ServerTests.Model);
        var expected = await reference.GenerateAsync("And God said", new GenerationOptions { MaxNewTokens = 6, Temperature = 0 });
        Assert.Equal(expected.Text, completion.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal("length", completion.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(6, completion.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        // The endpoints' rules (JSON bodies only, error objects) stay on their paths; the application's text endpoint still takes text.
        using var notes = await http.PostAsync("/notes", new StringContent("hello", Encoding.UTF8, "text/plain"));
        Assert.Equal("noted: hello", await notes.Content.ReadAsStringAsync());
        using var form = await http.PostAsync("/v1/completions", new StringContent("prompt=x", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, form.StatusCode);
        Assert.Equal("unsupported_media_type", JsonDocument.Parse(await form.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("gen_ai_client_token_usage_bucket", await http.GetStringAsync("/metrics"));
    }

    [Fact]
    public void MapWithoutAddSaysWhatIsMissing()
    {
        var app = WebApplication.CreateSlimBuilder().Build();
        var error = Assert.Throws<InvalidOperationException>(() => app.MapOnnxLMOpenAI());
        Assert.Contains("AddOnnxLMOpenAI", error.Message);
    }

    [Fact]
    public void MetricsAreWrittenInThePrometheusTextFormat()
    {
        const string MeterName = "OnnxLM.Server.Tests.Prometheus";
        using var metrics = new PrometheusMetrics(null, MeterName);
        using var meter = new Meter(MeterName);
        var requests = meter.CreateCounter<long>("test.requests", "{request}", "Requests \\ served\nso far");
        var duration = meter.CreateHistogram<double>("test.duration", "s", "How long");
        var waiting = 7;
        meter.CreateObservableGauge("test.queue.length", () => waiting, "{request}");

        requests.Add(2, new KeyValuePair<string, object?>("route.path", "a\"b\\c\nd"));
        requests.Add(3, new KeyValuePair<string, object?>("route.path", "a\"b\\c\nd"));
        requests.Add(1);
        foreach (var seconds in new[] { 0.0078125, 0.03125, 0.03125, 100 }) duration.Record(seconds, new KeyValuePair<string, object?>("model", "m"));
        var lines = metrics.Scrape().Split('\n');
        const string Scope = "otel_scope_name=\"OnnxLM.Server.Tests.Prometheus\"";

        Assert.Contains("# HELP test_requests_total Requests \\\\ served\\nso far", lines);
        Assert.Contains("# TYPE test_requests_total counter", lines);
        Assert.Contains("test_requests_total{" + Scope + ",route_path=\"a\\\"b\\\\c\\nd\"} 5", lines);
        Assert.Contains("test_requests_total{" + Scope + "} 1", lines);
        Assert.Contains("# TYPE test_queue_length gauge", lines);
        Assert.Contains("test_queue_length{" + Scope + "} 7", lines);
        Assert.Contains("# TYPE test_duration_seconds histogram", lines);

        // Buckets count every value at or below their bound, so they only grow, and +Inf is the count.
        var buckets = lines.Where(l => l.StartsWith("test_duration_seconds_bucket{", StringComparison.Ordinal)).ToList();
        Assert.Equal("test_duration_seconds_bucket{" + Scope + ",model=\"m\",le=\"0.01\"} 1", buckets[0]);
        Assert.Equal("test_duration_seconds_bucket{" + Scope + ",model=\"m\",le=\"0.02\"} 1", buckets[1]);
        Assert.Equal("test_duration_seconds_bucket{" + Scope + ",model=\"m\",le=\"0.04\"} 3", buckets[2]);
        Assert.Equal("test_duration_seconds_bucket{" + Scope + ",model=\"m\",le=\"81.92\"} 3", buckets[^2]);
        Assert.Equal("test_duration_seconds_bucket{" + Scope + ",model=\"m\",le=\"+Inf\"} 4", buckets[^1]);
        var counts = buckets.Select(b => long.Parse(b[(b.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(counts.Zip(counts.Skip(1)).All(p => p.First <= p.Second), string.Join("\n", buckets));
        Assert.Contains("test_duration_seconds_sum{" + Scope + ",model=\"m\"} 100.0703125", lines);
        Assert.Contains("test_duration_seconds_count{" + Scope + ",model=\"m\"} 4", lines);

        waiting = 2; // a gauge is read at each scrape
        Assert.Contains("test_queue_length{" + Scope + "} 2", metrics.Scrape().Split('\n'));
    }

    [Theory]
    [InlineData("gen_ai.client.operation.duration", "s", false, "gen_ai_client_operation_duration_seconds")]
    [InlineData("gen_ai.client.token.usage", "{token}", false, "gen_ai_client_token_usage")]
    [InlineData("onnxlm.requests", "{request}", true, "onnxlm_requests_total")]
    [InlineData("kv.cache.size", "By", false, "kv_cache_size_bytes")]
    [InlineData("9lives", null, false, "_9lives")]
    public void InstrumentNamesBecomePrometheusNames(string instrument, string? unit, bool counter, string expected) =>
        Assert.Equal(expected, PrometheusMetrics.MetricName(instrument, unit, counter));
}
