using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OnnxLM.Hosting;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace OnnxLM.Hosting.Tests;

/// <summary>OnnxLM.Hosting on kjv-tiny: the DI graph from configuration, IChatClient against the library, the queue, telemetry.</summary>
public sealed class HostingTests
{
    private static readonly AIChatMessage[] Hello = [new(ChatRole.User, "In the beginning")];

    [Fact]
    public async Task TheGraphBuildsFromConfigurationAndAnswersAsTheLibraryDoes()
    {
        LanguageModel model;
        using (var host = await Support.StartAsync(Support.Settings(""", "ModelId": "kjv", "MaxConcurrentSequences": 2, "Defaults": { "MaxOutputTokens": 9 }""")))
        {
            var client = host.Services.GetRequiredService<IChatClient>();
            model = host.Services.GetRequiredService<LanguageModel>();
            Assert.Same(model, client.GetService<LanguageModel>());
            Assert.Same(client, host.Services.GetRequiredService<OnnxLMChatClient>());
            var metadata = client.GetService<ChatClientMetadata>()!;
            Assert.Equal(("onnxlm", "kjv"), (metadata.ProviderName, metadata.DefaultModelId));

            var response = await client.GetResponseAsync(Hello, new ChatOptions { Temperature = 0 });
            var expected = await model.GenerateChatAsync([OnnxLM.Chat.ChatMessage.User("In the beginning")], new GenerationOptions { Temperature = 0, MaxNewTokens = 9 });
            Assert.Equal(expected.Text, response.Text);
            Assert.Equal(ChatRole.Assistant, response.Messages.Single().Role);
            Assert.Equal("kjv", response.ModelId);
            Assert.StartsWith("chatcmpl-", response.ResponseId);
            Assert.True(response.CreatedAt > DateTimeOffset.UtcNow.AddMinutes(-1));
            Assert.Equal(ChatFinishReason.Length, response.FinishReason);
            Assert.Equal((long)expected.PromptTokenCount, response.Usage!.InputTokenCount);
            Assert.Equal(9L, response.Usage.OutputTokenCount);

            var streamed = new List<ChatResponseUpdate>();
            await foreach (var update in client.GetStreamingResponseAsync(Hello, new ChatOptions { Temperature = 0 })) streamed.Add(update);
            Assert.True(streamed.Count >= 9);
            Assert.Equal(expected.Text, string.Concat(streamed.Select(u => u.Text)));
        }

        // Disposing the container disposed the model.
        await Assert.ThrowsAsync<ObjectDisposedException>(() => model.GenerateAsync("x"));
    }

    [Theory]
    [InlineData("\"MaxConcurrentSequences\": 0", "OnnxLM:MaxConcurrentSequences must be between 1 and 1024 (found '0').")]
    [InlineData("\"MaxQueueLength\": -1", "OnnxLM:MaxQueueLength must be between 0 and 1000000 (found '-1').")]
    [InlineData("\"Defaults\": { \"Temperature\": -1 }", "OnnxLM:Defaults:Temperature: Temperature must be a finite number ≥ 0 (0 = greedy); got -1.")]
    [InlineData("\"Defaults\": { \"TopP\": 1.5 }", "OnnxLM:Defaults:TopP: TopP must be in (0, 1]; got 1.5.")]
    [InlineData("\"Defaults\": { \"MaxOutputTokens\": 0 }", "OnnxLM:Defaults:MaxOutputTokens: MaxNewTokens must be at least 1; got 0.")]
    [InlineData("\"Defaults\": { \"RepetitionPenalty\": 0 }", "OnnxLM:Defaults:RepetitionPenalty: RepetitionPenalty must be a finite number > 0; got 0.")]
    [InlineData("\"DeviceId\": -1", "OnnxLM:DeviceId: DeviceId must be at least 0; got -1.")]
    [InlineData("\"WeightCacheDirectory\": \" \"", "OnnxLM:WeightCacheDirectory: WeightCacheDirectory must be null or a folder path; got ' '.")]
    [InlineData("\"ChatTemplatePath\": \"/no/such/template.jinja\"", "OnnxLM:ChatTemplatePath must be an existing file (found '/no/such/template.jinja').")]
    public async Task EachBadSettingFailsTheStartNamingItsKey(string setting, string message)
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => Support.StartAsync(Support.Settings(", " + setting)));
        Assert.Contains(message, ex.Failures);
    }

    [Theory]
    [InlineData("{ \"OnnxLM\": { } }", "OnnxLM:ModelPath must name a model folder")]
    [InlineData("{ \"OnnxLM\": { \"ModelPath\": \"/no/such/model\" } }", "OnnxLM:ModelPath must be an existing folder (found '/no/such/model').")]
    public async Task AMissingModelFailsTheStart(string settings, string message)
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => Support.StartAsync(settings));
        Assert.Contains(ex.Failures, f => f.StartsWith(message, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("\"MaxConcurentSequences\": 2", "MaxConcurentSequences")]
    [InlineData("\"MaxQueueLength\": \"many\"", "OnnxLM:MaxQueueLength")]
    public async Task UnknownKeysAndUnreadableValuesFailTheStart(string setting, string named)
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => Support.StartAsync(Support.Settings(", " + setting)));
        Assert.Contains(named, ex.Message);
    }

    [Fact]
    public async Task ChatOptionsChangeTheOutputAsTheyShould()
    {
        using var host = await Support.StartAsync(Support.Settings());
        var client = host.Services.GetRequiredService<IChatClient>();

        // Seed: the same seed gives the same sampled reply; another seed another.
        ChatOptions Sampled(long seed) => new() { Temperature = 1.5f, TopP = 1, Seed = seed, MaxOutputTokens = 16 };
        var a = await client.GetResponseAsync(Hello, Sampled(7));
        Assert.Equal(a.Text, (await client.GetResponseAsync(Hello, Sampled(7))).Text);
        Assert.NotEqual(a.Text, (await client.GetResponseAsync(Hello, Sampled(8))).Text);
        Assert.NotEqual(a.Text, (await client.GetResponseAsync(Hello, Sampled(7L + (1L << 32)))).Text); // a long seed is not truncated to the same int

        // Max tokens: exactly that many, finish reason Length.
        var four = await client.GetResponseAsync(Hello, Support.Greedy(4));
        Assert.Equal((4L, ChatFinishReason.Length), (four.Usage!.OutputTokenCount, four.FinishReason));

        // Stop sequence: the text ends before it, finish reason Stop.
        var full = await client.GetResponseAsync(Hello, Support.Greedy(40));
        var cut = full.Text.Length / 2;
        var stop = full.Text.Substring(cut, 3);
        var stopped = await client.GetResponseAsync(Hello, new ChatOptions { Temperature = 0, MaxOutputTokens = 40, StopSequences = [stop] });
        Assert.Equal(full.Text[..full.Text.IndexOf(stop, StringComparison.Ordinal)], stopped.Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);

        // Instructions become a system message the template renders.
        var model = host.Services.GetRequiredService<LanguageModel>();
        var withInstructions = await client.GetResponseAsync(Hello, new ChatOptions { Temperature = 0, MaxOutputTokens = 6, Instructions = "Scripture." });
        var expected = await model.GenerateChatAsync([OnnxLM.Chat.ChatMessage.System("Scripture."), OnnxLM.Chat.ChatMessage.User("In the beginning")], new GenerationOptions { MaxNewTokens = 6 });
        Assert.Equal(expected.Text, withInstructions.Text);

        // What cannot be honoured is refused, by name.
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Hello, new ChatOptions { ModelId = "gpt-4o" }));
        await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync(Hello, new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(JsonDocument.Parse("{\"type\": \"integer\", \"minimum\": 1}").RootElement) }));
        var schema = JsonDocument.Parse("{\"type\": \"object\", \"properties\": {\"answer\": {\"type\": \"boolean\"}}, \"required\": [\"answer\"]}").RootElement;
        var structured = await client.GetResponseAsync(Hello, new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(schema), Temperature = 0, MaxOutputTokens = 40 });
        Assert.Equal(ChatFinishReason.Stop, structured.FinishReason);
        Assert.Contains(JsonDocument.Parse(structured.Text).RootElement.GetProperty("answer").ValueKind, new[] { JsonValueKind.True, JsonValueKind.False });
        // A GBNF grammar or a regex through AdditionalProperties, as llama.cpp's and vLLM's servers take them.
        var graded = await client.GetResponseAsync(Hello, new ChatOptions { Temperature = 0, MaxOutputTokens = 20, AdditionalProperties = new() { ["grammar"] = "root ::= (\"yes\" | \"no\") \", \" [a-z]+" } });
        Assert.Matches("^(yes|no), [a-z]+\\z", graded.Text);
        var badGrammar = await Assert.ThrowsAsync<InvalidOptionException>(() => client.GetResponseAsync(Hello, new ChatOptions { AdditionalProperties = new() { ["grammar"] = "root ::= x" } }));
        Assert.Contains("'x' is used but never defined", badGrammar.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Hello, new ChatOptions { ResponseFormat = ChatResponseFormat.Json, AdditionalProperties = new() { ["regex"] = "[0-9]+" } }));
        var tool = AIFunctionFactory.Create(() => 1, "one");
        await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync(Hello, new ChatOptions { Tools = [tool], ToolMode = ChatToolMode.RequireAny }));
        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Hello, new ChatOptions { AdditionalProperties = new() { ["top_a"] = 0.2 } }));
        Assert.Contains("'top_a'", unknown.Message);
        Assert.Contains("min_p", unknown.Message);
    }

    [Fact]
    public async Task JsonResponseFormatGivesJsonObjects()
    {
        using var host = await Support.StartAsync(Support.Settings());
        var client = host.Services.GetRequiredService<IChatClient>();
        var complete = 0;
        for (var seed = 0; seed < 12; seed++)
        {
            var response = await client.GetResponseAsync(Hello, new ChatOptions { ResponseFormat = ChatResponseFormat.Json, Temperature = 1, Seed = seed, MaxOutputTokens = 60 });
            if (response.FinishReason != ChatFinishReason.Stop) continue;
            using var doc = JsonDocument.Parse(response.Text);
            Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
            complete++;
        }

        Assert.True(complete > 0, "no reply completed its JSON object within 60 tokens");
    }

    [Fact]
    public async Task PresenceAndFrequencyPenaltiesCountTheReplyOnlyAsOpenAIDefinesThem()
    {
        using var host = await Support.StartAsync(Support.Settings());
        var client = host.Services.GetRequiredService<IChatClient>();
        var model = host.Services.GetRequiredService<LanguageModel>();
        var (x, y) = (model.Tokenizer.Encode(" LORD", false)[0], model.Tokenizer.Encode(" God", false)[0]);
        var inPrompt = model.Tokenizer.Encode(" beginning", false)[0]; // in the prompt, never generated
        float[] Step(float? presence, float? frequency)
        {
            var recorder = new RecordingProcessor();
            var options = new ChatOptions
            {
                PresencePenalty = presence,
                FrequencyPenalty = frequency,
                RawRepresentationFactory = _ => new GenerationOptions
                {
                    Temperature = 0, MaxNewTokens = 4, LogitProcessors = { recorder }, TokenPicker = new ScriptedPicker([x, x, y], model.EndOfTurnTokenIds[0]),
                },
            };
            client.GetResponseAsync(Hello, options).GetAwaiter().GetResult();
            return recorder.Steps[3]; // after x, x, y
        }

        var none = Step(null, null);
        var penalised = Step(0.5f, 0.25f);
        Assert.Equal(none[x] - 0.5f - (2 * 0.25f), penalised[x], 4); // presence once + frequency per occurrence
        Assert.Equal(none[y] - 0.5f - 0.25f, penalised[y], 4);
        Assert.Equal(none[inPrompt], penalised[inPrompt], 4); // prompt tokens are not counted
    }

    [Fact]
    public async Task AToolCallRunsThroughUseFunctionInvocationAndItsResultIsRenderedBack()
    {
        var template = Path.Combine(Path.GetTempPath(), $"onnxlm-tools-{Guid.NewGuid():N}.jinja");
        File.WriteAllText(template, """
            {%- if tools %}<tools>{% for t in tools %}{{ t.function.name }};{% endfor %}</tools>
            {% endif %}
            {%- for m in messages %}
            {%- if m.role == 'tool' %}<tool_response>{{ m.content }}</tool_response>
            {% elif m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ {'name': c.function.name, 'arguments': c.function.arguments} | tojson }}</tool_call>{% endfor %}
            {% else %}{{ m.role }}: {{ m.content }}
            {% endif %}
            {%- endfor %}
            {%- if add_generation_prompt %}assistant:{% endif %}
            """);
        try
        {
            using var host = await Support.StartAsync(Support.Settings($", \"ChatTemplatePath\": {JsonSerializer.Serialize(template)}"));
            var model = host.Services.GetRequiredService<LanguageModel>();
            var end = model.EndOfTurnTokenIds[0];
            int[] Ids(string text)
            {
                var ids = model.Tokenizer.Encode(text, addSpecialTokens: false);
                Assert.Equal(text, model.Tokenizer.Decode(ids)); // the script must survive the round trip
                return ids;
            }

            var pickers = new Queue<ScriptedPicker>([
                new ScriptedPicker(Ids("<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>"), end),
                new ScriptedPicker(Ids(" Sunny in Oslo."), end),
            ]);
            var used = new List<ScriptedPicker>();
            string? calledWith = null;
            var weather = AIFunctionFactory.Create((string city) => { calledWith = city; return $"21 degrees and sunny in {city}"; }, "get_weather", "Current weather");
            var client = new ChatClientBuilder(host.Services.GetRequiredService<IChatClient>()).UseFunctionInvocation().Build();
            var options = new ChatOptions
            {
                Tools = [weather],
                RawRepresentationFactory = _ =>
                {
                    var picker = pickers.Dequeue();
                    used.Add(picker);
                    return new GenerationOptions { MaxNewTokens = 80, TokenPicker = picker };
                },
            };

            var response = await client.GetResponseAsync([new AIChatMessage(ChatRole.User, "Weather in Oslo?")], options);
            Assert.Equal("Oslo", calledWith);
            Assert.Equal(" Sunny in Oslo.", response.Text);
            Assert.Equal(2, used.Count);
            var firstPrompt = model.Tokenizer.Decode(used[0].Prompt!);
            Assert.Equal("<tools>get_weather;</tools>\nuser: Weather in Oslo?\nassistant:", firstPrompt);
            var secondPrompt = model.Tokenizer.Decode(used[1].Prompt!);
            Assert.EndsWith(
                "user: Weather in Oslo?\n<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call><tool_response>21 degrees and sunny in Oslo</tool_response>\nassistant:",
                secondPrompt);
            var call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
            Assert.Equal(("get_weather", "Oslo"), (call.Name, call.Arguments!["city"]!.ToString()));
        }
        finally
        {
            File.Delete(template);
        }
    }

    [Fact]
    public async Task ThirtyTwoConcurrentRequestsEachGetTheirSequentialResult()
    {
        using var host = await Support.StartAsync(Support.Settings(", \"MaxConcurrentSequences\": 4"));
        var client = host.Services.GetRequiredService<IChatClient>();
        string[] prompts = ["In the beginning", "And God said", "Thou shalt", "Blessed are", "The LORD is", "And it came to pass", "Hear, O Israel", "Let there be"];
        var requests = Enumerable.Range(0, 32).Select(i => (
            Messages: new[] { new AIChatMessage(ChatRole.User, prompts[i % prompts.Length]) },
            Options: i % 2 == 0 ? Support.Greedy(10) : new ChatOptions { Temperature = 1, Seed = i, MaxOutputTokens = 10 })).ToList();
        var sequential = new List<string>();
        foreach (var (messages, options) in requests) sequential.Add((await client.GetResponseAsync(messages, options)).Text);
        var concurrent = await Task.WhenAll(requests.Select(r => Task.Run(() => client.GetResponseAsync(r.Messages, r.Options))));
        Assert.Equal(sequential, concurrent.Select(r => r.Text));
    }

    [Fact]
    public async Task AFullQueueFailsFastAndACancelledWaiterLeavesIt()
    {
        using var host = await Support.StartAsync(Support.Settings(", \"MaxConcurrentSequences\": 1, \"MaxQueueLength\": 1"));
        var client = host.Services.GetRequiredService<IChatClient>();
        var hostState = host.Services.GetRequiredKeyedService<OnnxLMModelHost>(null);

        await using var running = client.GetStreamingResponseAsync(Hello, Support.Greedy(60)).GetAsyncEnumerator();
        Assert.True(await running.MoveNextAsync()); // holds the only sequence while it streams
        using var cancelWaiter = new CancellationTokenSource();
        var waiting = client.GetResponseAsync(Hello, Support.Greedy(4), cancelWaiter.Token);
        await WaitUntil(() => hostState.Queue.Waiting == 1);

        var full = await Assert.ThrowsAsync<OnnxLMQueueFullException>(() => client.GetResponseAsync(Hello, Support.Greedy(4)));
        Assert.Equal(1, full.QueueLength);

        cancelWaiter.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(0, hostState.Queue.Waiting);
        while (await running.MoveNextAsync()) { }
        Assert.Equal(0, hostState.Queue.Running);
        Assert.Equal(4L, (await client.GetResponseAsync(Hello, Support.Greedy(4))).Usage!.OutputTokenCount); // the queue works on
    }

    [Fact]
    public async Task TheModelHostServesYourOwnEndpointsAsItServesTheChatClient()
    {
        var measurements = new List<(string Name, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == OnnxLMTelemetry.Name) l.EnableMeasurementEvents(instrument);
        };
        void Add(Instrument i, double v, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            lock (measurements) measurements.Add((i.Name, v, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Add(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Add(i, v, t));
        listener.Start();
        using var host = await Support.StartAsync(Support.Settings(", \"ModelId\": \"kjv-own\", \"MaxConcurrentSequences\": 1, \"MaxQueueLength\": 1"));
        var model = host.Services.GetRequiredKeyedService<OnnxLMModelHost>(null); // public: what the server and a user's endpoints resolve
        Assert.Equal("kjv-own", model.ModelId);
        Assert.Equal(1, model.Options.MaxConcurrentSequences);
        Assert.Same(host.Services.GetRequiredService<LanguageModel>(), model.Model);
        Assert.True(model.IsLoaded);

        // One slot: a second caller waits, a third is refused, and the waiter gets the slot when the first frees it.
        var first = await model.EnterQueueAsync();
        var second = model.EnterQueueAsync().AsTask();
        await WaitUntil(() => model.Queue.Waiting == 1);
        Assert.False(second.IsCompleted);
        var full = await Assert.ThrowsAsync<OnnxLMQueueFullException>(() => model.EnterQueueAsync().AsTask());
        Assert.Equal(1, full.QueueLength);
        first.Dispose();
        first.Dispose(); // a lease frees its slot once
        using (await second)
        {
            Assert.Equal((1, 0), (model.Queue.Running, model.Queue.Waiting));
        }

        Assert.Equal(0, model.Queue.Running);
        model.RecordUsage("text_completion", 7, 3, TimeSpan.FromMilliseconds(250));
        var ours = measurements.Where(m => Equals(m.Tags.GetValueOrDefault("gen_ai.operation.name"), "text_completion") && Equals(m.Tags.GetValueOrDefault("gen_ai.request.model"), "kjv-own")).ToList();
        Assert.Equal(3, ours.Count);
        Assert.Contains(ours, m => m.Name == "gen_ai.client.token.usage" && m.Value == 7 && Equals(m.Tags["gen_ai.token.type"], "input"));
        Assert.Contains(ours, m => m.Name == "gen_ai.client.token.usage" && m.Value == 3 && Equals(m.Tags["gen_ai.token.type"], "output"));
        Assert.Contains(ours, m => m.Name == "gen_ai.client.operation.duration" && m.Value == 0.25 && !m.Tags.ContainsKey("gen_ai.token.type"));
        Assert.All(ours, m => Assert.Equal("onnxlm", m.Tags["gen_ai.provider.name"]));
    }

    [Fact]
    public void HistogramsAdviseTheGenAiBucketsInSeconds()
    {
        // OpenTelemetry's default buckets (0, 5, 10 … 10000) suit milliseconds; in seconds every request would land in le=5.
        double[] seconds = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
        long[] tokens = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
        using var instruments = new OnnxLMInstruments(null, () => 0, []);
        foreach (var histogram in new[] { instruments.Duration, instruments.FirstToken, instruments.PerToken, instruments.QueueWait })
        {
            Assert.Equal("s", histogram.Unit);
            Assert.Equal(seconds, histogram.Advice?.HistogramBucketBoundaries);
        }

        Assert.Equal(tokens, instruments.Tokens.Advice?.HistogramBucketBoundaries);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++) await Task.Delay(10);
        Assert.True(condition());
    }

    [Fact]
    public async Task AContinuedConversationReusesItsCachedPrefix()
    {
        using var host = await Support.StartAsync(Support.Settings());
        var client = host.Services.GetRequiredService<IChatClient>();
        var history = new List<AIChatMessage>(Hello);
        var first = await client.GetResponseAsync(history, Support.Greedy(8));
        Assert.Equal(0L, first.Usage!.CachedInputTokenCount);
        history.AddRange(first.Messages);
        history.Add(new AIChatMessage(ChatRole.User, "And the earth"));
        var second = await client.GetResponseAsync(history, Support.Greedy(8));
        Assert.True(second.Usage!.CachedInputTokenCount > first.Usage.InputTokenCount, $"{second.Usage.CachedInputTokenCount} cached");

        // The same reply as a client without any cache.
        using var cold = await Support.StartAsync(Support.Settings(", \"CachedConversations\": 0"));
        var fresh = await cold.Services.GetRequiredService<IChatClient>().GetResponseAsync(history, Support.Greedy(8));
        Assert.Equal(fresh.Text, second.Text);
        Assert.Equal(0L, fresh.Usage!.CachedInputTokenCount);
    }

    [Fact]
    public async Task MetricsAndActivitiesFollowTheGenAIConventions()
    {
        var measurements = new List<(string Name, string? Unit, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == OnnxLMTelemetry.Name) l.EnableMeasurementEvents(instrument);
        };
        void Add(Instrument i, double v, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            lock (measurements) measurements.Add((i.Name, i.Unit, v, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Add(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Add(i, v, t));
        listener.SetMeasurementEventCallback<int>((i, v, t, _) => Add(i, v, t));
        listener.Start();
        var activities = new List<Activity>();
        using var activityListener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == OnnxLMTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (activities) activities.Add(a); },
        };
        ActivitySource.AddActivityListener(activityListener);

        using var host = await Support.StartAsync(Support.Settings(", \"ModelId\": \"kjv\""));
        var response = await host.Services.GetRequiredService<IChatClient>().GetResponseAsync(Hello, Support.Greedy(5));
        listener.RecordObservableInstruments();

        var tokens = measurements.Where(m => m.Name == "gen_ai.client.token.usage").ToList();
        Assert.All(tokens, m => Assert.Equal("{token}", m.Unit));
        Assert.Equal((double)response.Usage!.InputTokenCount!, tokens.Single(m => (string?)m.Tags["gen_ai.token.type"] == "input").Value);
        Assert.Equal(5, tokens.Single(m => (string?)m.Tags["gen_ai.token.type"] == "output").Value);
        Assert.All(tokens, m => Assert.Equal(("chat", "onnxlm", "kjv"), ((string?)m.Tags["gen_ai.operation.name"], (string?)m.Tags["gen_ai.provider.name"], (string?)m.Tags["gen_ai.request.model"])));
        foreach (var name in (string[])["gen_ai.client.operation.duration", "gen_ai.server.time_to_first_token", "gen_ai.server.time_per_output_token", "onnxlm.queue.wait.duration"])
        {
            var m = measurements.Single(x => x.Name == name);
            Assert.Equal("s", m.Unit);
            Assert.True(m.Value >= 0 && m.Value < 60, $"{name} = {m.Value}");
        }

        Assert.True(measurements.Single(m => m.Name == "gen_ai.client.operation.duration").Value >= measurements.Single(m => m.Name == "gen_ai.server.time_to_first_token").Value);
        Assert.Equal(0, measurements.Last(m => m.Name == "onnxlm.queue.length").Value);

        var activity = activities.Single(a => a.DisplayName == "chat kjv");
        Assert.Equal("chat", activity.GetTagItem("gen_ai.operation.name"));
        Assert.Equal(5L, Convert.ToInt64(activity.GetTagItem("gen_ai.usage.output_tokens")));
        Assert.Equal(response.ResponseId, activity.GetTagItem("gen_ai.response.id"));
        Assert.Equal(new[] { "length" }, (string[])activity.GetTagItem("gen_ai.response.finish_reasons")!);
    }

    [Fact]
    public async Task KeyedModelsAndTheHealthCheck()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddKeyedOnnxLM("a", o => { o.ModelPath = Support.KjvTiny; o.ModelId = "model-a"; o.ExecutionProvider = ExecutionProvider.Cpu; });
        builder.Services.AddKeyedOnnxLM("b", o => { o.ModelPath = Support.KjvTiny; o.ModelId = "model-b"; o.LoadEagerly = false; });
        builder.Services.AddHealthChecks().AddOnnxLMCheck("a").AddOnnxLMCheck("b");
        using var host = builder.Build();
        await host.StartAsync();

        var a = host.Services.GetRequiredKeyedService<IChatClient>("a");
        var b = host.Services.GetRequiredKeyedService<IChatClient>("b");
        Assert.NotSame(a, b);
        Assert.Equal("model-a", a.GetService<ChatClientMetadata>()!.DefaultModelId);
        Assert.Null(host.Services.GetService<IChatClient>());

        var health = host.Services.GetRequiredService<HealthCheckService>();
        var before = await health.CheckHealthAsync();
        Assert.Equal(HealthStatus.Healthy, before.Entries["onnxlm-a"].Status);
        Assert.Equal("Cpu", before.Entries["onnxlm-a"].Data["provider"]);
        Assert.Equal(HealthStatus.Degraded, before.Entries["onnxlm-b"].Status); // lazy: not loaded until used

        var response = await b.GetResponseAsync(Hello, Support.Greedy(3));
        Assert.Equal("model-b", response.ModelId);
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync()).Entries["onnxlm-b"].Status);
    }
}
