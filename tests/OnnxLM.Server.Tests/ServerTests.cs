using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.AI;
using OnnxLM.Server;
using OpenAI;
using OpenAI.Chat;
using SkiaSharp;

namespace OnnxLM.Server.Tests;

/// <summary>onnxlm serve on kjv-tiny over loopback: OpenAI's own client, lm-eval's echo requests, the errors, the playground in a real browser.</summary>
public sealed class ServerTests : IAsyncLifetime
{
    private static readonly string Root = FindRoot();
    internal static readonly string Model = Path.Combine(Root, "models", "kjv-tiny");
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private LanguageModel _reference = null!;

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OnnxLM.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("OnnxLM.sln not found");
    }

    internal static async Task<(WebApplication App, HttpClient Http)> StartAsync(Action<OnnxLMServerOptions>? server = null, Action<OnnxLM.Hosting.OnnxLMOptions>? model = null)
    {
        var app = OnnxLMServer.Create(Model, "kjv-tiny", "http://127.0.0.1:0", server, o => { o.ExecutionProvider = ExecutionProvider.Cpu; model?.Invoke(o); });
        await app.StartAsync();
        return (app, new HttpClient { BaseAddress = new Uri(app.Urls.First()) });
    }

    public async Task InitializeAsync()
    {
        (_app, _http) = await StartAsync();
        _reference = LanguageModel.Load(Model);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.DisposeAsync();
        _reference.Dispose();
    }

    /// <summary>POSTs <paramref name="body"/> as JSON, asserts the status and returns the response's JSON.</summary>
    internal static async Task<JsonElement> PostJsonAsync(HttpClient http, string path, object body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await http.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private Task<JsonElement> PostAsync(string path, object body, HttpStatusCode expected = HttpStatusCode.OK, HttpClient? http = null) =>
        PostJsonAsync(http ?? _http, path, body, expected);

    private ChatClient OpenAIChat(string? key = null, HttpClient? http = null) => new("kjv-tiny", new ApiKeyCredential(key ?? "unused"),
        new OpenAIClientOptions { Endpoint = new Uri((http ?? _http).BaseAddress!, "/v1") });

    [Fact]
    public async Task CompletionsMatchTheLibrary()
    {
        var completion = await PostAsync("/v1/completions", new { prompt = "And God said", max_tokens = 10, temperature = 0 });
        var expected = await _reference.GenerateAsync("And God said", new GenerationOptions { MaxNewTokens = 10 });
        Assert.Equal(expected.Text, completion.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal("length", completion.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(10, completion.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("text_completion", completion.GetProperty("object").GetString());

        // A token-id prompt, two prompts at once, n samples with a seed, logprobs of the generated tokens.
        var ids = _reference.Tokenizer.EncodeForModel("And God said", null);
        var batch = await PostAsync("/v1/completions", new { prompt = new[] { ids, ids }, max_tokens = 4, temperature = 0, logprobs = 2 });
        Assert.Equal(2, batch.GetProperty("choices").GetArrayLength());
        var lp = batch.GetProperty("choices")[0].GetProperty("logprobs");
        Assert.Equal(expected.Tokens[0].LogProb, lp.GetProperty("token_logprobs")[0].GetDouble(), 6);
        Assert.Equal(2, lp.GetProperty("top_logprobs")[0].EnumerateObject().Count());
        var sampled = await PostAsync("/v1/completions", new { prompt = "And God said", max_tokens = 8, temperature = 1.2, seed = 5, n = 2 });
        var again = await PostAsync("/v1/completions", new { prompt = "And God said", max_tokens = 8, temperature = 1.2, seed = 5, n = 2 });
        Assert.Equal(sampled.GetProperty("choices")[1].GetProperty("text").GetString(), again.GetProperty("choices")[1].GetProperty("text").GetString());
        Assert.NotEqual(sampled.GetProperty("choices")[0].GetProperty("text").GetString(), sampled.GetProperty("choices")[1].GetProperty("text").GetString());
    }

    [Fact]
    public async Task EchoWithoutNewTokensGivesThePromptLogProbabilitiesAsLmEvalReadsThem()
    {
        const string text = "And God said, Let there be light";
        var response = await PostAsync("/v1/completions", new { prompt = text, echo = true, max_tokens = 0, logprobs = 1 });
        var choice = response.GetProperty("choices")[0];
        Assert.Equal(text, choice.GetProperty("text").GetString());
        var lp = choice.GetProperty("logprobs");
        var ids = _reference.Tokenizer.EncodeForModel(text, null);
        var score = await _reference.ScoreAsync(ids[..1], ids[1..]);
        var tokenLogProbs = lp.GetProperty("token_logprobs").EnumerateArray().ToList();
        Assert.Equal(ids.Length, tokenLogProbs.Count);
        Assert.Equal(JsonValueKind.Null, tokenLogProbs[0].ValueKind);
        for (var i = 1; i < ids.Length; i++) Assert.Equal(score.Tokens[i - 1].LogProb, tokenLogProbs[i].GetDouble(), 9);
        // is_greedy as lm-eval computes it: the top alternative is the token itself.
        var tops = lp.GetProperty("top_logprobs").EnumerateArray().Skip(1).Select(t => t.EnumerateObject().Single().Name).ToList();
        var tokens = lp.GetProperty("tokens").EnumerateArray().Skip(1).Select(t => t.GetString()).ToList();
        Assert.Equal(score.IsGreedy, tops.SequenceEqual(tokens));
        Assert.Equal(0, response.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        // text_offset points at each token in the echoed text.
        var offsets = lp.GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32()).ToList();
        Assert.Equal(text.IndexOf(" Let", StringComparison.Ordinal), offsets[tokens.IndexOf(" Let") + 1]);
    }

    [Fact]
    public async Task TheOfficialOpenAIClientChatsAndStreams()
    {
        var chat = OpenAIChat();
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 8 };
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("In the beginning")], options);
        var expected = await _reference.GenerateChatAsync([OnnxLM.Chat.ChatMessage.User("In the beginning")], new GenerationOptions { MaxNewTokens = 8 });
        Assert.Equal(expected.Text, completion.Content[0].Text);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(8, completion.Usage.OutputTokenCount);
        Assert.Equal(expected.PromptTokenCount, completion.Usage.InputTokenCount);

        var streamed = new StringBuilder();
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("In the beginning")], options))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        }

        Assert.Equal(expected.Text, streamed.ToString());

        // Microsoft.Extensions.AI over the OpenAI client, unmodified.
        IChatClient client = chat.AsIChatClient();
        var response = await client.GetResponseAsync("In the beginning", new ChatOptions { Temperature = 0, MaxOutputTokens = 8 });
        Assert.Equal(expected.Text, response.Text);
        Assert.Equal(8, response.Usage!.OutputTokenCount);
    }

    [Fact]
    public async Task ChatLogProbabilitiesAreTheModelsOwn()
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 6, IncludeLogProbabilities = true, TopLogProbabilityCount = 2 };
        ChatCompletion completion = await OpenAIChat().CompleteChatAsync([new UserChatMessage("In the beginning")], options);
        var expected = await _reference.GenerateChatAsync([OnnxLM.Chat.ChatMessage.User("In the beginning")], new GenerationOptions { MaxNewTokens = 6 });
        Assert.Equal(6, completion.ContentTokenLogProbabilities.Count);
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(expected.Tokens[i].LogProb, completion.ContentTokenLogProbabilities[i].LogProbability, 5);
            Assert.Equal(2, completion.ContentTokenLogProbabilities[i].TopLogProbabilities.Count);
            Assert.Equal(expected.Tokens[i].Text, completion.ContentTokenLogProbabilities[i].TopLogProbabilities[0].Token); // greedy: the top one was taken
        }
    }

    [Fact]
    public async Task ChatLogprobEqualsItsTopLogprobsEntryExactly()
    {
        // Sampled, so the chosen token is not always the first alternative; logprob and top_logprobs come from one log-softmax.
        var body = new { messages = new[] { new { role = "user", content = "In the beginning" } }, max_tokens = 16, temperature = 1.5, seed = 3, logprobs = true, top_logprobs = 5 };
        var response = await PostAsync("/v1/chat/completions", body);
        var content = response.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content").EnumerateArray().ToList();
        Assert.NotEmpty(content);
        var matched = 0;
        foreach (var entry in content)
        {
            var top = entry.GetProperty("top_logprobs").EnumerateArray().ToList();
            Assert.Equal(5, top.Count);
            var logprobs = top.Select(t => t.GetProperty("logprob").GetDouble()).ToList();
            Assert.Equal(logprobs.OrderByDescending(l => l), logprobs); // best first
            Assert.True(logprobs.Sum(Math.Exp) <= 1 + 1e-6);
            var bytes = entry.GetProperty("bytes").EnumerateArray().Select(b => b.GetInt32()).ToList();
            var self = top.Where(t => t.GetProperty("bytes").EnumerateArray().Select(b => b.GetInt32()).SequenceEqual(bytes)).ToList();
            if (bytes.Count > 0 && self.Count == 1)
            {
                // The same double, so the same text on the wire too.
                Assert.Equal(entry.GetProperty("logprob").GetDouble(), self[0].GetProperty("logprob").GetDouble());
                Assert.Equal(entry.GetProperty("logprob").GetRawText(), self[0].GetProperty("logprob").GetRawText());
                matched++;
            }
        }

        Assert.True(matched > 0, "no token was among its own top 5: the equality check never ran");
    }

    [Fact]
    public async Task MetricsPutAKnownRequestInItsSecondsBucket()
    {
        var (app, http) = await StartAsync(); // a server of its own: its /metrics counts this one request only
        await using (app)
        using (http)
        {
            var clock = Stopwatch.StartNew();
            var completion = await PostAsync("/v1/completions", new { prompt = "In the beginning", max_tokens = 3, temperature = 0 }, http: http);
            var wall = clock.Elapsed.TotalSeconds;
            var promptTokens = completion.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
            var lines = (await http.GetStringAsync("/metrics")).Split('\n');

            // OpenTelemetry's GenAI duration buckets, in seconds: one request lands in the first bound at or above its duration.
            double[] seconds = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
            var duration = Histogram(lines, "gen_ai_client_operation_duration_seconds", "");
            Assert.Equal(seconds, duration.Bounds);
            Assert.True(duration.Sum > 0 && duration.Sum <= wall, $"{duration.Sum} s recorded, {wall} s seen by the client");
            var bucket = Array.FindIndex(seconds, b => duration.Sum <= b);
            Assert.All(duration.Counts.Take(bucket), c => Assert.Equal(0, c));
            Assert.All(duration.Counts.Skip(bucket), c => Assert.Equal(1, c));

            // Token counts use the token buckets: the prompt's count lands in the first power of 4 at or above it.
            double[] tokens = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
            var input = Histogram(lines, "gen_ai_client_token_usage", "gen_ai_token_type=\"input\"");
            Assert.Equal(tokens, input.Bounds);
            Assert.Equal(promptTokens, input.Sum);
            var tokenBucket = Array.FindIndex(tokens, b => promptTokens <= b);
            Assert.Equal(0, tokenBucket == 0 ? 0 : input.Counts[tokenBucket - 1]);
            Assert.Equal(1, input.Counts[tokenBucket]);
        }
    }

    /// <summary>One histogram series of a scrape (the one whose labels contain <paramref name="label"/>): bounds, cumulative counts, sum.</summary>
    private static (double[] Bounds, long[] Counts, double Sum) Histogram(string[] lines, string name, string label)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var buckets = lines.Where(l => l.StartsWith(name + "_bucket{", StringComparison.Ordinal) && l.Contains(label, StringComparison.Ordinal) && !l.Contains("le=\"+Inf\"", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(buckets);
        var bounds = buckets.Select(l => double.Parse(System.Text.RegularExpressions.Regex.Match(l, "le=\"([^\"]+)\"").Groups[1].Value, inv)).ToArray();
        var counts = buckets.Select(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], inv)).ToArray();
        var sumLine = Assert.Single(lines, l => l.StartsWith(name + "_sum{", StringComparison.Ordinal) && l.Contains(label, StringComparison.Ordinal));
        return (bounds, counts, double.Parse(sumLine[(sumLine.LastIndexOf(' ') + 1)..], inv));
    }

    [Fact]
    public async Task FrameworkLogsStayAtWarningAndEachRequestGetsOneLine()
    {
        foreach (var verbose in new[] { false, true })
        {
            var captured = new LevelCapturingLoggerProvider();
            var (app, http) = await StartAsync(verbose ? o => o.FrameworkLogLevel = Microsoft.Extensions.Logging.LogLevel.Information : null);
            await using (app)
            using (http)
            {
                var factory = (Microsoft.Extensions.Logging.ILoggerFactory)app.Services.GetService(typeof(Microsoft.Extensions.Logging.ILoggerFactory))!;
                factory.AddProvider(captured);
                await PostAsync("/v1/completions", new { prompt = "In", max_tokens = 2 }, http: http);
                await PostAsync("/v1/completions", new { prompt = "In", temperature = -5 }, HttpStatusCode.BadRequest, http);
            }

            var entries = captured.Entries.ToList();
            var summaries = entries.Where(e => e.Category == "OnnxLM.Server" && e.Level == Microsoft.Extensions.Logging.LogLevel.Information).Select(e => e.Message).ToList();
            Assert.Equal(2, summaries.Count(m => m.StartsWith("POST /v1/completions ", StringComparison.Ordinal)));
            Assert.Contains(summaries, m => m.StartsWith("POST /v1/completions 200 in ", StringComparison.Ordinal) && m.EndsWith(" ms", StringComparison.Ordinal));
            Assert.Contains(summaries, m => m.StartsWith("POST /v1/completions 400 in ", StringComparison.Ordinal));
            var framework = entries.Where(e => e.Category.StartsWith("Microsoft.", StringComparison.Ordinal) && e.Level < Microsoft.Extensions.Logging.LogLevel.Warning).ToList();
            if (verbose) Assert.Contains(framework, e => e.Category.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
            else Assert.Empty(framework);
        }
    }

    private sealed class LevelCapturingLoggerProvider : Microsoft.Extensions.Logging.ILoggerProvider
    {
        public System.Collections.Concurrent.ConcurrentQueue<(string Category, Microsoft.Extensions.Logging.LogLevel Level, string Message)> Entries { get; } = new();

        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(LevelCapturingLoggerProvider owner, string category) : Microsoft.Extensions.Logging.ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

            public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Entries.Enqueue((category, logLevel, formatter(state, exception)));
        }
    }

    [Fact]
    public async Task ToolsReachTheTemplateAndToolMessagesAreAccepted()
    {
        var chat = OpenAIChat();
        var weather = OpenAI.Chat.ChatTool.CreateFunctionTool("get_weather", "Weather in a city", BinaryData.FromString("""{"type": "object", "properties": {"city": {"type": "string"}}}"""));
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 4, Tools = { weather } };
        OpenAI.Chat.ChatMessage[] conversation =
        [
            new UserChatMessage("Weather in Oslo?"),
            new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall("call12345", "get_weather", BinaryData.FromString("""{"city": "Oslo"}"""))]),
            new ToolChatMessage("call12345", "sunny"),
        ];
        ChatCompletion completion = await chat.CompleteChatAsync(conversation, options);
        Assert.Equal(4, completion.Usage.OutputTokenCount); // kjv-tiny's plain template renders the tool turn as text; the request is served
    }

    [Fact]
    public async Task JsonObjectResponseFormatAndRegexConstrainTheOutput()
    {
        var complete = 0;
        for (var seed = 0; seed < 12; seed++)
        {
            var chat = await PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = "In the beginning" } }, response_format = new { type = "json_object" }, temperature = 1, seed, max_tokens = 60 });
            var choice = chat.GetProperty("choices")[0];
            if (choice.GetProperty("finish_reason").GetString() != "stop") continue;
            using var doc = JsonDocument.Parse(choice.GetProperty("message").GetProperty("content").GetString()!);
            Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
            complete++;
        }

        Assert.True(complete > 0);
        var dated = await PostAsync("/v1/completions", new { prompt = "And God said", regex = "[0-9]{4}-[0-9]{2}-[0-9]{2}", max_tokens = 20, temperature = 0 });
        Assert.Matches(@"^[0-9]{4}-[0-9]{2}-[0-9]{2}\z", dated.GetProperty("choices")[0].GetProperty("text").GetString());
        var graded = await PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = "In the beginning" } }, grammar = "root ::= (\"yes\" | \"no\") \" \" [0-9]{1,2}", temperature = 0, max_tokens = 10 });
        Assert.Matches(@"^(yes|no) [0-9]{1,2}\z", graded.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var chosen = await PostAsync("/v1/completions", new { prompt = "And God said, Let there be", guided_choice = new[] { " light", " darkness" }, max_tokens = 10, temperature = 0 });
        Assert.Contains(chosen.GetProperty("choices")[0].GetProperty("text").GetString(), new[] { " light", " darkness" });
        var badGrammar = await PostAsync("/v1/completions", new { prompt = "x", grammar = "root ::= \"a\" | (", max_tokens = 5 }, HttpStatusCode.BadRequest);
        Assert.Equal("grammar", badGrammar.GetProperty("error").GetProperty("param").GetString());
        Assert.Contains("Grammar line 1", badGrammar.GetProperty("error").GetProperty("message").GetString());
        var twice = await PostAsync("/v1/completions", new { prompt = "x", grammar = "root ::= \"a\"", regex = "a", max_tokens = 5 }, HttpStatusCode.BadRequest);
        Assert.Contains("at most one", twice.GetProperty("error").GetProperty("message").GetString());
        var noSchema = await PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = "x" } }, response_format = new { type = "json_schema" } }, HttpStatusCode.BadRequest);
        Assert.Equal("response_format", noSchema.GetProperty("error").GetProperty("param").GetString());
        var structured = await PostAsync("/v1/chat/completions", new
        {
            messages = new[] { new { role = "user", content = "In the beginning" } },
            response_format = new { type = "json_schema", json_schema = new { name = "verse", schema = new { type = "object", properties = new { chapter = new { type = "integer" } }, required = new[] { "chapter" } } } },
            temperature = 0, max_tokens = 30,
        });
        var content = structured.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.True(JsonDocument.Parse(content).RootElement.GetProperty("chapter").TryGetInt64(out _), content);
    }

    [Fact]
    public async Task TokenizeAndDetokenizeRoundTrip()
    {
        var tokens = await PostAsync("/tokenize", new { prompt = "In the beginning" });
        Assert.Equal(_reference.Tokenizer.Encode("In the beginning"), tokens.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()));
        var text = await PostAsync("/detokenize", new { tokens = _reference.Tokenizer.Encode("In the beginning", addSpecialTokens: false) });
        Assert.Equal("In the beginning", text.GetProperty("prompt").GetString());
        var models = JsonDocument.Parse(await _http.GetStringAsync("/v1/models")).RootElement;
        Assert.Equal("kjv-tiny", models.GetProperty("data")[0].GetProperty("id").GetString());
        await PostAsync("/v1/completions", new { prompt = "x", max_tokens = 2 });
        var metrics = await _http.GetStringAsync("/metrics");
        Assert.Contains("gen_ai_client_operation_duration_seconds_count", metrics);
        Assert.Contains("gen_ai_client_token_usage", metrics);
        Assert.Equal("ok", JsonDocument.Parse(await _http.GetStringAsync("/health")).RootElement.GetProperty("status").GetString());
    }

    [Theory]
    [InlineData("{\"model\": \"gpt-4\", \"prompt\": \"x\"}", 404, "model", "model_not_found")]
    [InlineData("{\"prompt\": \"x\", \"temperature\": -1}", 400, "temperature", null)]
    [InlineData("{\"prompt\": \"x\", \"top_p\": 3}", 400, "top_p", null)]
    [InlineData("{\"prompt\": \"x\", \"max_tokens\": \"many\"}", 400, "max_tokens", null)]
    [InlineData("{\"prompt\": [5, 99999]}", 400, "prompt", null)]
    [InlineData("{\"max_tokens\": 3}", 400, "prompt", null)]
    [InlineData("{\"prompt\": \"x\", \"logit_bias\": {\"abc\": 1}}", 400, "logit_bias", null)]
    [InlineData("{not json", 400, null, null)]
    [InlineData("[1, 2]", 400, null, null)]
    [InlineData("{\"prompt\": \"x\", \"max_tokens\": 100000}", 400, "max_tokens", null)]
    [InlineData("{\"prompt\": \"x\", \"max_tokens\": -3}", 400, "max_tokens", null)]
    [InlineData("{\"model\": \"../kjv-tiny\", \"prompt\": \"x\"}", 404, "model", "model_not_found")]
    [InlineData("{\"model\": \"models/kjv-tiny\", \"prompt\": \"x\"}", 404, "model", "model_not_found")]
    [InlineData("{\"prompt\": \"x\", \"grammar\": \"root ::= root \\\"a\\\"\"}", 400, "grammar", null)]
    public async Task BadRequestsGetOpenAIErrorObjects(string body, int status, string? param, string? code)
    {
        using var response = await _http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(status, (int)response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(param, error.GetProperty("param").GetString());
        if (code is not null) Assert.Equal(code, error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task AnOverLongPromptAndAnOversizedBodyAreRefused()
    {
        var error = await PostAsync("/v1/completions", new { prompt = string.Join(' ', Enumerable.Repeat("and the LORD spake", 200)) }, HttpStatusCode.BadRequest);
        Assert.Equal("context_length_exceeded", error.GetProperty("error").GetProperty("code").GetString());
        var (app, http) = await StartAsync(o => o.MaxRequestBodyBytes = 1024);
        await using (app)
        using (http)
        {
            var big = await PostAsync("/v1/completions", new { prompt = new string('a', 5000) }, HttpStatusCode.RequestEntityTooLarge, http);
            Assert.Equal("request_too_large", big.GetProperty("error").GetProperty("code").GetString());
        }
    }

    [Fact]
    public async Task AClientTricklingItsBodyIsCutOff()
    {
        var (app, http) = await StartAsync(o => { o.MinRequestBodyBytesPerSecond = 500; o.MinRequestBodyGracePeriod = TimeSpan.FromSeconds(2); });
        await using (app)
        using (http)
        using (var tcp = new System.Net.Sockets.TcpClient())
        {
            var uri = http.BaseAddress!;
            await tcp.ConnectAsync(uri.Host, uri.Port);
            var stream = tcp.GetStream();
            var head = "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"prompt\": \"";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
            var clock = Stopwatch.StartNew();
            var cutOff = false;
            // One byte every 200 ms (5 B/s) is far below the 500 B/s floor: the server must hang up soon after the 2 s grace.
            while (clock.Elapsed < TimeSpan.FromSeconds(15))
            {
                try
                {
                    await stream.WriteAsync("a"u8.ToArray());
                    await Task.Delay(200);
                    if (tcp.Available > 0 || (tcp.Client.Poll(0, System.Net.Sockets.SelectMode.SelectRead) && tcp.Available == 0))
                    {
                        cutOff = true;
                        break;
                    }
                }
                catch (IOException)
                {
                    cutOff = true;
                    break;
                }
            }

            Assert.True(cutOff, "the server kept reading a body sent at 5 bytes per second for 15 s");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"cut off only after {clock.Elapsed.TotalSeconds:F1} s");
        }

        // The server is fine for everyone else.
        await PostAsync("/v1/completions", new { prompt = "x", max_tokens = 2 });
    }

    [Fact]
    public async Task PromptTextNeverReachesTheLogsByDefault()
    {
        var captured = new CapturingLoggerProvider();
        var (app, http) = await StartAsync();
        await using (app)
        using (http)
        {
            var factory = (Microsoft.Extensions.Logging.ILoggerFactory)app.Services.GetService(typeof(Microsoft.Extensions.Logging.ILoggerFactory))!;
            factory.AddProvider(captured);
            const string Secret = "zebra quartz 4817";
            await PostAsync("/v1/completions", new { prompt = Secret, max_tokens = 3 }, http: http);
            await PostAsync("/v1/chat/completions", new { messages = new[] { new { role = "user", content = Secret } }, max_tokens = 3 }, http: http);
            await PostAsync("/v1/completions", new { prompt = Secret, temperature = -5 }, HttpStatusCode.BadRequest, http);
        }

        Assert.NotEmpty(captured.Messages); // the requests were logged ...
        Assert.DoesNotContain(captured.Messages, m => m.Contains("zebra", StringComparison.Ordinal)); // ... without their text
    }

    private sealed class CapturingLoggerProvider : Microsoft.Extensions.Logging.ILoggerProvider
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Messages { get; } = new();

        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => new Logger(this);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturingLoggerProvider owner) : Microsoft.Extensions.Logging.ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

            public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Messages.Enqueue(formatter(state, exception) + " " + exception?.Message);
        }
    }

    [Fact]
    public async Task ApiKeysAreRequiredWhenConfigured()
    {
        var (app, http) = await StartAsync(o => o.ApiKeys.Add("secret"));
        await using (app)
        using (http)
        {
            var refused = await PostAsync("/v1/completions", new { prompt = "x", max_tokens = 1 }, HttpStatusCode.Unauthorized, http);
            Assert.Equal("invalid_api_key", refused.GetProperty("error").GetProperty("code").GetString());
            ChatCompletion ok = await OpenAIChat("secret", http).CompleteChatAsync([new UserChatMessage("In")], new ChatCompletionOptions { MaxOutputTokenCount = 2 });
            Assert.Equal(2, ok.Usage.OutputTokenCount);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode); // health is open
        }
    }

    [Fact]
    public async Task AFullQueueAnswers429AndADisconnectedClientFreesItsSequence()
    {
        var (app, http) = await StartAsync(model: o => { o.MaxConcurrentSequences = 1; o.MaxQueueLength = 0; });
        await using (app)
        using (http)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = JsonContent.Create(new { prompt = "In the beginning", max_tokens = 200, stream = true, temperature = 0 }) };
            var streaming = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            var reader = new StreamReader(await streaming.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync());

            using var busy = await http.PostAsJsonAsync("/v1/completions", new { prompt = "x", max_tokens = 1 });
            Assert.Equal((HttpStatusCode)429, busy.StatusCode);
            Assert.True(busy.Headers.RetryAfter is not null);

            streaming.Dispose(); // the client goes away mid-stream
            var clock = Stopwatch.StartNew();
            HttpStatusCode status;
            do
            {
                await Task.Delay(50);
                using var retry = await http.PostAsJsonAsync("/v1/completions", new { prompt = "x", max_tokens = 1 });
                status = retry.StatusCode;
            }
            while (status != HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(10));
            Assert.Equal(HttpStatusCode.OK, status);
        }
    }

    /// <summary>The page at <paramref name="query"/> as headless chromium leaves it once its scripts have run.</summary>
    private static async Task<string> DumpDomAsync(string chromium, HttpClient http, string query)
    {
        var start = new ProcessStartInfo(chromium) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000", "--dump-dom", new Uri(http.BaseAddress!, query).ToString()]) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var dom = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return dom;
    }

    private static string Body(string dom) => dom[dom.IndexOf("<body", StringComparison.Ordinal)..dom.IndexOf('>', dom.IndexOf("<body", StringComparison.Ordinal))];

    private static string Data(string body, string name) => System.Text.RegularExpressions.Regex.Match(body, $"data-{name}=\"([^\"]*)\"").Groups[1].Value;

    [SkippableFact]
    public async Task ThePlaygroundShowsAMissingApiKeyAndWorksOnceTheKeyIsGiven()
    {
        var chromium = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
        Skip.If(chromium is null, "no chromium browser installed (apt-get install chromium)");
        var (app, http) = await StartAsync(o => o.ApiKeys.Add("secret"));
        await using (app)
        using (http)
        {
            // Without the key: the server's 401 message is on the page, in the visible error area, and nothing else loaded.
            var refused = await DumpDomAsync(chromium!, http, "/?prompt=In%20the%20beginning");
            Assert.Contains("A valid API key is required", Data(Body(refused), "error"));
            var area = System.Text.RegularExpressions.Regex.Match(refused, "<div id=\"error\"([^>]*)>([^<]*)</div>");
            Assert.True(area.Success, refused);
            Assert.DoesNotContain("hidden", area.Groups[1].Value);
            Assert.Contains("A valid API key is required", area.Groups[2].Value);
            Assert.Contains("Enter the server's API key", area.Groups[2].Value);
            Assert.Equal("", Data(Body(refused), "ready"));

            // With the key given (the #key= fragment takes the same path as typing it into the field): the page works.
            var served = Body(await DumpDomAsync(chromium!, http, "/?prompt=In%20the%20beginning#key=secret"));
            Assert.Equal("1", Data(served, "ready"));
            Assert.Equal("", Data(served, "error"));
            Assert.Equal("4", Data(served, "tokens"));
            Assert.Equal("4", Data(served, "attention"));

            // A wrong key is an error on the page again, not empty panels.
            var wrong = Body(await DumpDomAsync(chromium!, http, "/?prompt=In%20the%20beginning#key=nope"));
            Assert.Contains("A valid API key is required", Data(wrong, "error"));
        }
    }

    [SkippableFact]
    public async Task ThePlaygroundStreamsTokensAndTheTemperatureReshapesTheBars()
    {
        var chromium = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
        Skip.If(chromium is null, "no chromium browser installed (apt-get install chromium)");
        var page = await _http.GetStringAsync("/");
        Assert.Contains("OnnxLM playground", page);

        Task<string> Dom(string query) => DumpDomAsync(chromium!, _http, query);

        // Headless virtual time can dump the page before the first streamed chunk lands; a few tries make that vanishingly rare.
        var cool = "";
        for (var attempt = 0; attempt < 4 && !int.TryParse(Data(cool, "generated"), out var streamedCount) | streamedCount < 1; attempt++)
        {
            cool = Body(await Dom("/?prompt=In%20the%20beginning&autorun=1&temperature=0.5&seed=1&max_tokens=12"));
        }

        var hot = Body(await Dom("/?prompt=In%20the%20beginning&temperature=1.5"));
        Assert.True(int.Parse(Data(cool, "generated")) >= 1, cool); // tokens streamed into the page
        Assert.Equal("4", Data(cool, "tokens"));
        Assert.Equal("4", Data(cool, "attention"));
        var next = await _reference.Explain().NextTokenAsync("In the beginning", 1, [0.5f, 1.5f]);
        Assert.Equal(next.Temperatures[0].Top[0].Probability, double.Parse(Data(cool, "next-top"), System.Globalization.CultureInfo.InvariantCulture), 5);
        Assert.Equal(next.Temperatures[1].Top[0].Probability, double.Parse(Data(hot, "next-top"), System.Globalization.CultureInfo.InvariantCulture), 5);

        // A screenshot: the page's size, and not blank (the header's dark band above the light page).
        var shot = Path.Combine(Path.GetTempPath(), $"onnxlm-playground-{Guid.NewGuid():N}.png");
        try
        {
            var start = new ProcessStartInfo(chromium!) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in (string[])["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,860", "--virtual-time-budget=20000", $"--screenshot={shot}",
                         new Uri(_http.BaseAddress!, "/?prompt=In%20the%20beginning&autorun=1&stream=0&seed=3&max_tokens=20").ToString()]) start.ArgumentList.Add(a);
            using (var process = Process.Start(start)!) await process.WaitForExitAsync();
            using var image = SKBitmap.Decode(shot);
            Assert.Equal((1280, 860), (image.Width, image.Height));
            var header = image.GetPixel(640, 5);
            var background = image.GetPixel(640, 500);
            Assert.True(header.Red < 80 && background.Red > 200, $"header {header}, page {background}");
            var colours = Enumerable.Range(0, 100).Select(i => image.GetPixel(20 + (i * 7), 280)).Distinct().Count();
            Assert.True(colours > 3, "the output line shows probability-coloured tokens");
        }
        finally
        {
            File.Delete(shot);
        }
    }

    [SkippableFact]
    public async Task ThePlaygroundHasAnIconShowsDetailsOnFocusAndShowsApiErrors()
    {
        // The icon: the page declares it, and /favicon.ico (which browsers ask for on their own) answers with it, not 404.
        var page = await _http.GetStringAsync("/");
        var icon = System.Text.RegularExpressions.Regex.Match(page, "<link rel=\"icon\" href=\"([^\"]+)\" type=\"image/svg\\+xml\">");
        Assert.True(icon.Success, page);
        foreach (var path in (string[])[icon.Groups[1].Value, "/favicon.ico"])
        {
            using var response = await _http.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("image/svg+xml", response.Content.Headers.ContentType?.MediaType);
            Assert.StartsWith("<svg", await response.Content.ReadAsStringAsync());
        }

        var chromium = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
        Skip.If(chromium is null, "no chromium browser installed (apt-get install chromium)");

        // A token's detail is in a styled box on focus (as Tab gives it; ?detail=2 focuses the third output token), not in a
        // native title: the box is visible, holds that token's probability and alternatives, and describes the token.
        const string Focused = "/?prompt=In%20the%20beginning%20God%20created&autorun=1&stream=0&seed=3&max_tokens=20&detail=2";
        var dom = await ChromiumAsync(chromium!, "--dump-dom", Focused);
        var tip = System.Text.RegularExpressions.Regex.Match(dom, "<div id=\"tip\" role=\"tooltip\"([^>]*)>([^<]*)</div>");
        Assert.True(tip.Success, dom);
        Assert.DoesNotContain("hidden", tip.Groups[1].Value);
        Assert.StartsWith("p = ", tip.Groups[2].Value);
        Assert.Equal(5, tip.Groups[2].Value.Split('\n').Count(line => line.EndsWith('%')) - 1); // p, then logprobs: 5 alternatives
        var tokens = System.Text.RegularExpressions.Regex.Matches(dom, "<span class=\"token\"([^>]*)>");
        Assert.Equal(20, tokens.Count);
        Assert.All(tokens, t => Assert.Contains("tabindex=\"0\"", t.Groups[1].Value));
        Assert.All(tokens, t => Assert.Contains("aria-describedby=\"tip\"", t.Groups[1].Value));
        Assert.DoesNotContain(" title=", string.Concat(tokens.Select(t => t.Groups[1].Value)));
        Assert.Contains($"data-detail=\"{tip.Groups[2].Value}\"", tokens[2].Groups[1].Value);
        var pieces = System.Text.RegularExpressions.Regex.Matches(dom, "<span class=\"piece\"([^>]*)>");
        Assert.Equal(6, pieces.Count);
        Assert.Contains(pieces, p => p.Groups[1].Value.Contains("data-detail=\"", StringComparison.Ordinal) && p.Groups[1].Value.Contains("tabindex=\"0\"", StringComparison.Ordinal));

        // The attention canvas keeps its labels whole: the farthest slanted column label ends inside the canvas.
        var reach = Data(Body(dom), "attention-reach").Split('/').Select(int.Parse).ToArray();
        Assert.True(reach[0] <= reach[1], $"a column label runs to x = {reach[0]} on a canvas {reach[1]} wide");

        // In a screenshot at the same window size the box is drawn where the page placed it: dark, over the light page.
        var position = System.Text.RegularExpressions.Regex.Match(tip.Groups[1].Value, @"left: ([\d.]+)px; top: ([\d.]+)px");
        Assert.True(position.Success, tip.Groups[1].Value);
        var shot = Path.Combine(Path.GetTempPath(), $"onnxlm-tip-{Guid.NewGuid():N}.png");
        try
        {
            await ChromiumAsync(chromium!, $"--screenshot={shot}", Focused);
            using var image = SKBitmap.Decode(shot);
            var (x, y) = ((int)double.Parse(position.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), (int)double.Parse(position.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
            var inside = image.GetPixel(x + 4, y + 4);
            var below = image.GetPixel(x + 4, Math.Min(image.Height - 1, y + 200));
            Assert.True(inside.Red < 60 && below.Red > 200, $"tip box {inside} at ({x}, {y}), page below it {below}");
        }
        finally
        {
            File.Delete(shot);
        }

        // An API error is on the page: the server's own message for a refused request, in the visible error area.
        var refused = await PostAsync("/v1/completions", new { prompt = "In the beginning", max_tokens = -1 }, HttpStatusCode.BadRequest);
        var message = refused.GetProperty("error").GetProperty("message").GetString()!;
        var failed = await ChromiumAsync(chromium!, "--dump-dom", "/?prompt=In%20the%20beginning&autorun=1&max_tokens=-1");
        var area = System.Text.RegularExpressions.Regex.Match(failed, "<div id=\"error\"([^>]*)>([^<]*)</div>");
        Assert.True(area.Success, failed);
        Assert.DoesNotContain("hidden", area.Groups[1].Value);
        Assert.Equal($"/v1/completions answered 400: {message}", System.Net.WebUtility.HtmlDecode(area.Groups[2].Value));
        Assert.Equal("1", Data(Body(failed), "ready")); // the other panels loaded
    }

    private Task<string> ChromiumAsync(string chromium, string action, string query) =>
        HeadlessChromium.RunAsync(chromium, action, new Uri(_http.BaseAddress!, query), 860);
}
