using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using OnnxLM.Server;

namespace OnnxLM.Server.Tests;

/// <summary>
/// Constraints whose repetition counts multiply past the limit: each endpoint answers a 400 OpenAI error object naming
/// ConstraintLimits.MaxAutomatonSize at once (not after gigabytes and minutes), and the server keeps answering.
/// </summary>
public sealed class HostileConstraintTests : IAsyncLifetime
{
    private const string Nested = "((x{1000}){1000}){1000}";
    private static readonly TimeSpan Quickly = TimeSpan.FromSeconds(5);
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        // The same start as ServerTests: kjv-tiny on the CPU, on a free loopback port.
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "OnnxLM.sln"))) root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("OnnxLM.sln not found");
        _app = OnnxLMServer.Create(Path.Combine(root, "models", "kjv-tiny"), "kjv-tiny", "http://127.0.0.1:0", null, o => o.ExecutionProvider = ExecutionProvider.Cpu);
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(_app.Urls.First()), Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.DisposeAsync();
    }

    /// <summary>Posts <paramref name="body"/> and returns the status, the parsed answer and how long it took.</summary>
    private async Task<(HttpStatusCode Status, JsonElement Body, TimeSpan Took)> PostAsync(string path, object body)
    {
        var clock = Stopwatch.StartNew();
        using var response = await _http.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), clock.Elapsed);
    }

    private static object[] Messages => [new { role = "user", content = "x" }];

    private static readonly JsonElement NestedArrays = JsonDocument.Parse("""
        {"type": "array", "maxItems": 1000, "items": {"type": "array", "maxItems": 1000, "items": {"type": "array", "maxItems": 1000, "items": {"const": 1}}}}
        """).RootElement;

    // Nesting counts in GBNF stays small (rules reference each other); writing one out 4001 times is what grows.
    private static readonly string WideGrammar = "root ::= " + string.Concat(Enumerable.Repeat("\"x\"{1000} ", 4001));

    public static TheoryData<string, string> Hostile => new()
    {
        { "/v1/completions", "regex" },
        { "/v1/completions", "guided_regex" },
        { "/v1/completions", "grammar" },
        { "/v1/chat/completions", "regex" },
        { "/v1/chat/completions", "grammar" },
        { "/v1/chat/completions", "response_format" },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task ConstraintsPastTheLimitAreA400NamingIt(string path, string field)
    {
        var body = new Dictionary<string, object> { ["max_tokens"] = 3 };
        if (path == "/v1/completions") body["prompt"] = "x";
        else body["messages"] = Messages;
        body[field] = field switch
        {
            "grammar" => WideGrammar,
            "response_format" => new { type = "json_schema", json_schema = new { name = "nested", schema = NestedArrays } },
            _ => Nested,
        };

        var (status, answer, took) = await PostAsync(path, body);

        Assert.True(status == HttpStatusCode.BadRequest, $"{(int)status}: {answer}");
        Assert.True(took < Quickly, $"answered after {took.TotalMilliseconds:F0} ms");
        var error = answer.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains("ConstraintLimits.MaxAutomatonSize = 4,000,000", error.GetProperty("message").GetString());

        // Still serving: an ordinary constrained request right after.
        var (okStatus, ok, _) = await PostAsync("/v1/completions", new { prompt = "And God said", max_tokens = 8, temperature = 0, regex = "[a-z ]{1,20}" });
        Assert.True(okStatus == HttpStatusCode.OK, $"{(int)okStatus}: {ok}");
        Assert.Matches("^[a-z ]{1,20}$", ok.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task TheSameNestingAsAGrammarIsSmallAndAnswers()
    {
        var (status, answer, took) = await PostAsync("/v1/completions", new { prompt = "x", max_tokens = 3, temperature = 0, grammar = "root ::= ((\"x\"{1000}){1000}){1000}" });

        Assert.True(status == HttpStatusCode.OK, $"{(int)status}: {answer}");
        Assert.True(took < Quickly, $"answered after {took.TotalMilliseconds:F0} ms");
        Assert.Matches("^x+$", answer.GetProperty("choices")[0].GetProperty("text").GetString());
    }
}
