using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace OnnxLM.Server.Tests;

/// <summary>
/// The requests of an outside adversarial run against onnxlm serve on kjv-tiny: each is answered with its exact status and
/// an OpenAI error object naming the field, and the server answers a normal request afterwards.
/// </summary>
public sealed class HostileRequestTests : IAsyncLifetime
{
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync() => (_app, _http) = await ServerTests.StartAsync();

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.DisposeAsync();
    }

    private static async Task<JsonElement> SendAsync(HttpClient http, string path, byte[] body, int status, string contentType = "application/json")
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        using var response = await http.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"{path}: {(int)response.StatusCode} {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error").Clone();
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()), text);
        return error;
    }

    private static Task<JsonElement> SendAsync(HttpClient http, string path, string json, int status) => SendAsync(http, path, Encoding.UTF8.GetBytes(json), status);

    /// <summary>A normal request still works: the refusals left the server serving.</summary>
    private static async Task StillServesAsync(HttpClient http)
    {
        using var response = await http.PostAsJsonAsync("/v1/completions", new { prompt = "In the beginning", max_tokens = 2, temperature = 0 });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(2, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task AHugePromptIsRefusedBeforeItIsTokenized()
    {
        // The reproduction: a 4 MB prompt cost +520 MB and 3.2 s before its 400, because all of it was tokenized first.
        var huge = new string('a', 4_000_000);
        foreach (var (path, json) in new[]
        {
            ("/v1/completions", JsonSerializer.Serialize(new { prompt = huge, max_tokens = 2 })),
            ("/v1/chat/completions", JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = huge } }, max_tokens = 2 })),
            ("/tokenize", JsonSerializer.Serialize(new { text = huge })),
        })
        {
            var error = await SendAsync(_http, path, json, 400);
            Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
            Assert.Contains("refused before tokenizing", error.GetProperty("message").GetString());
        }

        await StillServesAsync(_http);
    }

    [Fact]
    public async Task TheMemoryOfALargeBodyIsCollectedOnceItsRequestEnds()
    {
        // Eight refused 4 MB prompts left an idle server at +75 % of its resident set: their buffers and strings sit on the
        // large-object heap until something else allocates. A request with a body over the threshold now asks for one
        // compacting collection after it ends.
        var before = LargeBodyMemory.Collections;
        var json = JsonSerializer.Serialize(new { prompt = new string('a', LargeBodyMemory.Threshold), max_tokens = 2 });
        await SendAsync(_http, "/v1/completions", json, 400);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (LargeBodyMemory.Collections == before && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.True(LargeBodyMemory.Collections > before, "no collection followed a request with a 1 MiB body");
        await StillServesAsync(_http);
    }

    [Fact]
    public async Task ManyPromptsOrChoicesInOneRequestAreRefusedBeforeAnyWork()
    {
        // The reproduction: 2,000 prompts × n = 16 (32,000 completions) ran for minutes; now a 400 at once.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var many = await SendAsync(_http, "/v1/completions", JsonSerializer.Serialize(new { prompt = Enumerable.Repeat("a", 2000), n = 16, max_tokens = 16 }), 400);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{clock.Elapsed}");
        Assert.Equal("prompt", many.GetProperty("param").GetString());
        Assert.Contains("2000 prompts", many.GetProperty("message").GetString());
        Assert.Contains("at most 64", many.GetProperty("message").GetString());
        // Each within its own cap (10 prompts, n = 16) but 160 completions in all.
        var product = await SendAsync(_http, "/v1/completions", JsonSerializer.Serialize(new { prompt = Enumerable.Repeat("a", 10), n = 16, max_tokens = 1 }), 400);
        Assert.Equal("n", product.GetProperty("param").GetString());
        Assert.Contains("160 completions", product.GetProperty("message").GetString());
        // Token-id prompts count the same way.
        var ids = await SendAsync(_http, "/v1/completions", JsonSerializer.Serialize(new { prompt = Enumerable.Repeat(new[] { 5, 6 }, 65), max_tokens = 1 }), 400);
        Assert.Equal("prompt", ids.GetProperty("param").GetString());
        await StillServesAsync(_http);

        var (app, http) = await ServerTests.StartAsync(o => { o.MaxPrompts = 2; o.MaxTotalChoices = 3; });
        await using (app)
        using (http)
        {
            var three = await SendAsync(http, "/v1/completions", """{"prompt": ["a", "b", "c"], "max_tokens": 1}""", 400);
            Assert.Contains("at most 2", three.GetProperty("message").GetString());
            var four = await SendAsync(http, "/v1/completions", """{"prompt": ["a", "b"], "n": 2, "max_tokens": 1}""", 400);
            Assert.Contains("at most 3", four.GetProperty("message").GetString());
            using var two = await http.PostAsJsonAsync("/v1/completions", new { prompt = new[] { "a", "b" }, max_tokens = 1 });
            Assert.Equal(2, JsonDocument.Parse(await two.Content.ReadAsStringAsync()).RootElement.GetProperty("choices").GetArrayLength());
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => new OnnxLMServerOptions { MaxPrompts = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new OnnxLMServerOptions { MaxTotalChoices = 0 });
    }

    [Theory]
    [InlineData("/explain/tokens", "text")]
    [InlineData("/explain/next", "prompt")]
    [InlineData("/explain/attention", "text")]
    public async Task ExplainInputIsBounded(string path, string field)
    {
        var error = await SendAsync(_http, path, JsonSerializer.Serialize(new Dictionary<string, string> { [field] = new string('a', 8193) }), 400);
        Assert.Equal(field, error.GetProperty("param").GetString());
        Assert.Contains("8193 characters", error.GetProperty("message").GetString());
        Assert.Contains("8192 (MaxExplainTextLength)", error.GetProperty("message").GetString());
        using var atLimit = await _http.PostAsJsonAsync("/explain/tokens", new { text = new string('a', 8192) });
        Assert.Equal(HttpStatusCode.OK, atLimit.StatusCode);

        var (app, http) = await ServerTests.StartAsync(o => o.MaxExplainTextLength = 10);
        await using (app)
        using (http)
        {
            var small = await SendAsync(http, path, JsonSerializer.Serialize(new Dictionary<string, string> { [field] = "In the beginning" }), 400);
            Assert.Contains("at most 10", small.GetProperty("message").GetString());
            using var ok = await http.PostAsJsonAsync(path, new Dictionary<string, string> { [field] = "In the" });
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
    }

    /// <summary>The 17 wrongly typed inputs that were 500s with empty bodies (plus both endpoints where the report named both), and the field each must name.</summary>
    public static TheoryData<string, string, string?> WronglyTyped => new()
    {
        { "/v1/completions", "{\"prompt\": \"a\u00ff\", \"max_tokens\": 1}", null }, // made invalid UTF-8 below
        { "/v1/completions", """{"prompt": "\ud800", "max_tokens": 1}""", "prompt" },
        { "/v1/completions", """{"prompt": "a", "response_format": "json"}""", "response_format" },
        { "/v1/completions", """{"prompt": "a", "response_format": {"type": 5}}""", "response_format.type" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "response_format": "json"}""", "response_format" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "response_format": {"type": 5}}""", "response_format.type" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}""", "messages[0].content[0].text" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": [5]}]}""", "messages[0].content[0]" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function"}]}]}""", "messages[1].tool_calls[0].function" },
        { "/v1/chat/completions", """{"messages": [{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": 5, "arguments": "{}"}}]}]}""", "messages[0].tool_calls[0].function.name" },
        { "/v1/chat/completions", """{"messages": [{"role": "assistant", "tool_calls": [5]}]}""", "messages[0].tool_calls[0]" },
        { "/v1/chat/completions", """{"messages": [{"role": "tool", "tool_call_id": 5, "content": "sunny"}]}""", "messages[0].tool_call_id" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "tools": [5]}""", "tools[0]" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function", "function": {"name": "f", "description": 5}}]}""", "tools[0].function.description" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "stream_options": "x"}""", "stream_options" },
        { "/v1/completions", """{"prompt": "a", "stream_options": "x"}""", "stream_options" },
        { "/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "response_format": {"type": "json_schema", "json_schema": {"name": 5, "schema": {"type": "object"}}}}""", "response_format.json_schema.name" },
        { "/detokenize", """{"tokens": ["a"]}""", "tokens[0]" },
        { "/detokenize", """{"tokens": [1.5]}""", "tokens[0]" },
        { "/detokenize", """{"tokens": [1e20]}""", "tokens[0]" },
        { "/v1/chat/completions", """{"messages": [{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}""", "messages[0].tool_calls[0].function.arguments" },
        { "/v1/completions", """{"prompt": [[1, "a"]]}""", "prompt[0][1]" },
    };

    [Theory]
    [MemberData(nameof(WronglyTyped))]
    public async Task WronglyTypedInputIsA400NamingTheField(string path, string json, string? param)
    {
        var body = Encoding.UTF8.GetBytes(json);
        if (param is null)
        {
            // "a\u00ff" is C3 BF in UTF-8; a lone 0xFF byte in its place is not UTF-8 at all.
            var at = Array.IndexOf(body, (byte)0xC3);
            body = [.. body[..at], 0xFF, .. body[(at + 2)..]];
        }

        var error = await SendAsync(_http, path, body, 400);
        Assert.Equal(param, error.GetProperty("param").GetString());
        if (param is not null) Assert.Contains($"'{param}'", error.GetProperty("message").GetString());
        else Assert.Contains("UTF-8", error.GetProperty("message").GetString());
        await StillServesAsync(_http);
    }

    [Fact]
    public async Task AnUnexpectedFailureIsA500WithAnErrorObjectAndIsLogged()
    {
        var app = OnnxLMServer.Create(ServerTests.Model, "kjv-tiny", "http://127.0.0.1:0", configureModel: o => o.ExecutionProvider = ExecutionProvider.Cpu);
        app.MapGet("/v1/boom", string () => throw new InvalidOperationException("a bug"));
        var logged = new List<string>();
        var factory = (Microsoft.Extensions.Logging.ILoggerFactory)app.Services.GetService(typeof(Microsoft.Extensions.Logging.ILoggerFactory))!;
        factory.AddProvider(new ListLoggerProvider(logged));
        await app.StartAsync();
        await using (app)
        using (var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) })
        {
            using var response = await http.GetAsync("/v1/boom");
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("server_error", error.GetProperty("type").GetString());
            Assert.DoesNotContain("a bug", error.GetProperty("message").GetString()); // the details stay in the log
            lock (logged) Assert.Contains(logged, m => m.Contains("/v1/boom", StringComparison.Ordinal) && m.Contains("a bug", StringComparison.Ordinal));
            await StillServesAsync(http);
        }
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}""", "tools[0].function.parameters", "must be an object")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "chat_template_kwargs": "x"}""", "chat_template_kwargs", "must be an object")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}""", "tool_choice.function.name", "not in 'tools'")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "tool_choice": "sometimes"}""", "tool_choice", "expected")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "max_tokens": 0}""", "max_tokens", "at least 1")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "max_completion_tokens": 0}""", "max_completion_tokens", "at least 1")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "n": 2}""", "n", "must be 1 for chat completions")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "temperature": 5}""", "temperature", "between 0 and 2")]
    [InlineData("/v1/completions", """{"prompt": "a", "temperature": 5}""", "temperature", "between 0 and 2")]
    [InlineData("/v1/completions", """{"prompt": "a", "top_p": 1.5}""", "top_p", "'top_p': TopP must be in (0, 1]; got 1.5.")]
    [InlineData("/v1/completions", """{"prompt": "a", "presence_penalty": 3}""", "presence_penalty", "between -2 and 2")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "frequency_penalty": -2.5}""", "frequency_penalty", "between -2 and 2")]
    [InlineData("/v1/completions", """{"prompt": "a", "temperature": 1e40}""", "temperature", "between 0 and 2")]
    [InlineData("/explain/next", """{"prompt": "a", "temperature": 5}""", "temperature", "between 0 and 2")]
    [InlineData("/v1/completions", """{"prompt": "a", "top_k": -1}""", "top_k", "'top_k': TopK must be at least 0; got -1.")]
    [InlineData("/v1/completions", """{"prompt": "a", "min_p": 1.5}""", "min_p", "'min_p': MinP must be in [0, 1]; got 1.5.")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "typical_p": 0}""", "typical_p", "'typical_p': TypicalP must be in (0, 1]; got 0.")]
    [InlineData("/v1/completions", """{"prompt": "a", "repetition_penalty": 0}""", "repetition_penalty", "'repetition_penalty': RepetitionPenalty must be a finite number > 0; got 0.")]
    [InlineData("/v1/completions", """{"prompt": "a", "repeat_penalty": -1}""", "repeat_penalty", "'repeat_penalty': RepetitionPenalty must be a finite number > 0; got -1.")]
    [InlineData("/v1/chat/completions", """{"messages": [{"role": "user", "content": "a"}], "max_tokens": -5}""", "max_tokens", "'max_tokens': MaxNewTokens must be at least 1; got -5.")]
    [InlineData("/v1/completions", """{"prompt": "a", "max_tokens": 2, "logit_bias": {"99999": 1}}""", "logit_bias", "'logit_bias': GenerationOptions.LogitBias names token 99999, outside the model's vocabulary of")]
    [InlineData("/v1/completions", """{"prompt": "a", "max_tokens": 2, "regex": "a{3,1}"}""", "regex", "'regex': Regular expression 'a{3,1}' at ")]
    public async Task SilentlyAcceptedWrongValuesAreRefused(string path, string json, string param, string message)
    {
        var error = await SendAsync(_http, path, json, 400);
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString());
        await StillServesAsync(_http);
    }

    [Fact]
    public async Task TheValuesAtTheEdgesOfTheRangesAndTemplateArgumentsAreServed()
    {
        using var chat = await _http.PostAsJsonAsync("/v1/chat/completions", new
        {
            messages = new[] { new { role = "user", content = "In the beginning" } },
            max_tokens = 1, temperature = 2, top_p = 1, presence_penalty = -2, frequency_penalty = 2, chat_template_kwargs = new { enable_thinking = false }, tool_choice = "auto",
        });
        var text = await chat.Content.ReadAsStringAsync();
        Assert.True(chat.StatusCode == HttpStatusCode.OK, text);
        Assert.Equal(1, JsonDocument.Parse(text).RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Theory]
    [InlineData("/v1/completions", "text/plain")]
    [InlineData("/v1/completions", "application/x-www-form-urlencoded")]
    [InlineData("/v1/completions", "multipart/form-data; boundary=x")]
    [InlineData("/v1/chat/completions", "text/plain")]
    [InlineData("/tokenize", "text/plain")]
    [InlineData("/detokenize", "text/plain")]
    [InlineData("/explain/next", "text/plain")]
    [InlineData("/explain/tokens", "text/plain")]
    [InlineData("/explain/attention", "text/plain")]
    public async Task OnlyJsonBodiesAreRead(string path, string contentType)
    {
        // What a cross-site form or fetch without preflight can send: refused before the body is read.
        var error = await SendAsync(_http, path, """{"prompt": "a", "text": "a", "messages": [{"role": "user", "content": "a"}], "tokens": [5], "max_tokens": 1}"""u8.ToArray(), 415, contentType);
        Assert.Equal("unsupported_media_type", error.GetProperty("code").GetString());
        Assert.Contains("application/json", error.GetProperty("message").GetString());

        using var noType = new ByteArrayContent("""{"prompt": "a"}"""u8.ToArray());
        using var response = await _http.PostAsync(path, noType);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        await StillServesAsync(_http);
    }

    [Fact]
    public async Task UnknownRoutesAndMethodsGetErrorObjectsAndTheBearerSchemeIsCaseInsensitive()
    {
        using (var missing = await _http.GetAsync("/v1/nothing-here"))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            var error = JsonDocument.Parse(await missing.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("not_found", error.GetProperty("code").GetString());
            Assert.Contains("/v1/nothing-here", error.GetProperty("message").GetString());
        }

        using (var wrongMethod = await _http.GetAsync("/v1/completions"))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
            var error = JsonDocument.Parse(await wrongMethod.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("method_not_allowed", error.GetProperty("code").GetString());
        }

        using (var page = await _http.GetAsync("/playground/nothing.js"))
        {
            Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
            Assert.Equal("not_found", JsonDocument.Parse(await page.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
        }

        var (app, http) = await ServerTests.StartAsync(o => o.ApiKeys.Add("secret"));
        await using (app)
        using (http)
        {
            foreach (var scheme in new[] { "Bearer", "bearer", "BEARER" })
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = JsonContent.Create(new { prompt = "a", max_tokens = 1 }) };
                request.Headers.TryAddWithoutValidation("Authorization", $"{scheme} secret");
                using var response = await http.SendAsync(request);
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{scheme}: {(int)response.StatusCode}");
            }

            using var wrong = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = JsonContent.Create(new { prompt = "a", max_tokens = 1 }) };
            wrong.Headers.TryAddWithoutValidation("Authorization", "bearer nope");
            using var refused = await http.SendAsync(wrong);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
    }

    private sealed class ListLoggerProvider(List<string> messages) : Microsoft.Extensions.Logging.ILoggerProvider
    {
        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => new Logger(messages);

        public void Dispose()
        {
        }

        private sealed class Logger(List<string> messages) : Microsoft.Extensions.Logging.ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

            public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (messages) messages.Add(formatter(state, exception) + " " + exception?.Message);
            }
        }
    }
}
