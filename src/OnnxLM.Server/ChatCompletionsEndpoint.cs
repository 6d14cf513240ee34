using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using OnnxLM.Server.Wire;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace OnnxLM.Server;

/// <summary>
/// <c>POST /v1/chat/completions</c>: OpenAI chat through the model's <see cref="OnnxLM.Hosting.OnnxLMChatClient"/> — its chat
/// template, tools and <c>tool_calls</c>, the request queue, cached conversations — with streaming and usage.
/// </summary>
internal static class ChatCompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext http, ServedModels models, OnnxLMServerOptions server)
    {
        var ct = http.RequestAborted;
        var body = await RequestBody.ReadAsync(http.Request, ct);
        var (name, _) = models.Resolve(body.String("model"));
        if ((body.Int("n", 1) ?? 1) != 1) throw ApiException.BadRequest("'n' must be 1 for chat completions; send the request again for more choices.", "n");
        var messages = Messages(body);
        var generation = new GenerationOptions();
        body.ApplySampling(generation, defaultMaxTokens: 512, server.MaxOutputTokens, minTokens: 1);
        var logprobs = body.Bool("logprobs");
        var topLogprobs = body.Int("top_logprobs", 0, 20) ?? 0;
        if (topLogprobs > 0 && !logprobs) throw ApiException.BadRequest("'top_logprobs' needs 'logprobs': true.", "top_logprobs");
        var responseFormat = ResponseFormat(body);
        if (generation.Constraint is not null && responseFormat is not null and not ChatResponseFormatText)
        {
            throw ApiException.BadRequest("'response_format' and a regex, grammar or guided_choice constrain the output twice; give one of them.", "response_format");
        }

        var includeUsage = body.Object("stream_options")?.Bool("include_usage") ?? false;
        var tools = Tools(body);
        // The library lists each token's alternatives from the same log-softmax as its own log-probability.
        if (logprobs) generation.TopLogProbs = topLogprobs;
        var options = new ChatOptions
        {
            RawRepresentationFactory = _ => generation,
            Tools = tools,
            ToolMode = ToolMode(body, tools),
            ResponseFormat = responseFormat,
            // A conversation named by the client (or a gateway) keeps its cached session, so its next turn reuses the cache
            // (usage.prompt_tokens_details.cached_tokens); with batching on, an unnamed request joins the shared decode loop instead.
            ConversationId = ConversationId(http.Request),
        };
        if (body.Object("chat_template_kwargs") is { } kwargs) (options.AdditionalProperties ??= [])["chat_template_kwargs"] = kwargs.Root;
        var client = models.ChatClient(name);
        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var (_, host) = models.Resolve(name);
        var tokenizer = host.Model.Tokenizer;
        TokenLogProb? LogProbEntry(ChatResponseUpdate update)
        {
            if (!logprobs || update.AdditionalProperties?.TryGetValue(OnnxLM.Hosting.OnnxLMChatClient.LogProbProperty, out var lp) != true) return null;
            var text = update.Text;
            TopLogProb[] top = update.AdditionalProperties.TryGetValue(OnnxLM.Hosting.OnnxLMChatClient.TopLogProbsProperty, out var alternatives)
                && alternatives is IReadOnlyList<TokenAlternative> list
                ? [.. list.Select(t => new TopLogProb(tokenizer.TokenText(t.Id), t.LogProb, Bytes(tokenizer.TokenText(t.Id))))]
                : [];
            return new TokenLogProb(text, (double)lp!, Bytes(text), top);
        }

        if (!body.Bool("stream"))
        {
            var updates = new List<ChatResponseUpdate>();
            var entries = new List<TokenLogProb>();
            await foreach (var update in client.GetStreamingResponseAsync(messages, options, ct))
            {
                updates.Add(update);
                if (LogProbEntry(update) is { } entry) entries.Add(entry);
            }

            var response = updates.ToChatResponse();
            var calls = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Select(c => ToolCall(c, null)).ToList();
            var reply = new ChatReply("assistant", calls.Count > 0 && string.IsNullOrEmpty(response.Text) ? null : response.Text, calls.Count > 0 ? calls : null);
            var choice = new ChatChoice(0, reply, logprobs ? new ChatLogProbs(entries) : null, Finish(response.FinishReason));
            await http.Response.WriteAsJsonAsync(new ChatCompletion(id, "chat.completion", created, name, [choice], Usage(response.Usage)), ServerJson.Body.ChatCompletion, contentType: null, ct);
            return;
        }

        CompletionsEndpoint.StartStream(http);
        Task Send(ChatDelta delta, string? finish = null, ChatLogProbs? logProbs = null) =>
            CompletionsEndpoint.Send(http, new ChatChunk(id, ChunkObject, created, name, [new ChatChunkChoice(0, delta, logProbs, finish)]), ServerJson.Events.ChatChunk, ct);
        await Send(new ChatDelta(Role: "assistant", Content: ""));
        UsageDetails? usage = null;
        await foreach (var update in client.GetStreamingResponseAsync(messages, options, ct))
        {
            var entry = LogProbEntry(update);
            if (update.Text.Length > 0 || entry is not null) await Send(new ChatDelta(Content: update.Text), logProbs: entry is null ? null : new ChatLogProbs([entry]));
            var calls = update.Contents.OfType<FunctionCallContent>().Select((c, i) => ToolCall(c, i)).ToList();
            if (calls.Count > 0) await Send(new ChatDelta(ToolCalls: calls));
            usage = update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details ?? usage;
            if (update.FinishReason is { } finish) await Send(new ChatDelta(), Finish(finish));
        }

        if (includeUsage) await CompletionsEndpoint.Send(http, new ChatChunk(id, ChunkObject, created, name, [], Usage(usage)), ServerJson.Events.ChatChunk, ct);
        await http.Response.WriteAsync("data: [DONE]\n\n", ct);
    }

    private const string ChunkObject = "chat.completion.chunk";

    /// <summary>The <see cref="LoadHeaders.ConversationId"/> header: null when absent; at most 256 characters.</summary>
    private static string? ConversationId(HttpRequest request)
    {
        var value = request.Headers[LoadHeaders.ConversationId].ToString().Trim();
        if (value.Length == 0) return null;
        return value.Length <= 256 ? value : throw ApiException.BadRequest($"The {LoadHeaders.ConversationId} header has {value.Length} characters; at most 256 are accepted.");
    }

    /// <summary>A token's UTF-8 bytes as OpenAI writes them: a list of integers.</summary>
    private static int[] Bytes(string text) => [.. System.Text.Encoding.UTF8.GetBytes(text).Select(b => (int)b)];

    private static string Finish(ChatFinishReason? reason) =>
        reason == ChatFinishReason.ToolCalls ? "tool_calls" : reason == ChatFinishReason.Length ? "length" : "stop";

    private static ChatUsage Usage(UsageDetails? usage) => new(
        usage?.InputTokenCount ?? 0, usage?.OutputTokenCount ?? 0, usage?.TotalTokenCount ?? 0, new PromptTokensDetails(usage?.CachedInputTokenCount ?? 0));

    /// <summary>A call as OpenAI writes it; <paramref name="index"/> only in a stream.</summary>
    private static ToolCall ToolCall(FunctionCallContent call, int? index) =>
        new(index, call.CallId, "function", new FunctionCall(call.Name, JsonSerializer.Serialize(call.Arguments)));

    /// <summary><c>response_format</c>: text, json_object, or json_schema with its schema; null when not given.</summary>
    private static ChatResponseFormat? ResponseFormat(RequestBody body)
    {
        if (body.Object("response_format") is not { } format) return null;
        return format.RequiredString("type") switch
        {
            "json_object" => ChatResponseFormat.Json,
            "text" => ChatResponseFormat.Text,
            "json_schema" => format.Object("json_schema") is { } js && js.Object("schema") is { } schema
                ? ChatResponseFormat.ForJsonSchema(schema.Root, js.String("name"), js.String("description"))
                : throw ApiException.BadRequest("'response_format' json_schema needs 'json_schema': {\"name\", \"schema\": {...}}.", "response_format"),
            var other => throw ApiException.BadRequest($"'response_format.type' is '{other}'; expected text, json_object or json_schema.", "response_format.type"),
        };
    }

    /// <summary>
    /// <c>tool_choice</c>: "none" and "auto" are served; "required" and a named function need constrained decoding, which
    /// this server does not have, so they are refused rather than silently treated as "auto".
    /// </summary>
    private static ChatToolMode? ToolMode(RequestBody body, List<AITool>? tools)
    {
        if (body.Get("tool_choice") is not { } choice) return null;
        if (choice.ValueKind == JsonValueKind.String)
        {
            return RequestBody.Text(choice, "tool_choice") switch
            {
                "none" => ChatToolMode.None,
                "auto" => ChatToolMode.Auto,
                "required" => throw ApiException.BadRequest("'tool_choice' \"required\" needs constrained decoding, which this server does not offer yet; use \"auto\" or \"none\".", "tool_choice"),
                var other => throw ApiException.BadRequest($"'tool_choice' is '{other}'; expected \"none\", \"auto\", or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}.", "tool_choice"),
            };
        }

        var function = RequestBody.Object(choice, "tool_choice").Object("function") ?? throw ApiException.BadRequest("'tool_choice.function' is required.", "tool_choice.function");
        var name = function.RequiredString("name");
        if (tools?.Any(t => t.Name == name) != true)
        {
            var known = tools is { Count: > 0 } ? string.Join(", ", tools.Select(t => t.Name)) : "none";
            throw ApiException.BadRequest($"'tool_choice' names the function '{name}', which is not in 'tools' (the request's tools: {known}).", "tool_choice.function.name");
        }

        throw ApiException.BadRequest($"'tool_choice' naming a function ('{name}') needs constrained decoding, which this server does not offer yet; use \"auto\".", "tool_choice");
    }

    private static List<AIChatMessage> Messages(RequestBody body)
    {
        var list = body.List("messages") is { } array && array.GetArrayLength() > 0
            ? body.Objects("messages") : throw ApiException.BadRequest("'messages' must be a non-empty list.", "messages");
        var result = new List<AIChatMessage>();
        foreach (var m in list)
        {
            var roleName = m.RequiredString("role");
            var contents = new List<AIContent>();
            switch (m.Get("content"))
            {
                case null: break;
                case { ValueKind: JsonValueKind.String } text: contents.Add(new TextContent(RequestBody.Text(text, m.At("content")))); break;
                case { ValueKind: JsonValueKind.Array }:
                    foreach (var part in m.Objects("content"))
                    {
                        if (part.RequiredString("type") != "text") throw ApiException.BadRequest($"'{part.At("type")}' is '{part.String("type")}'; this server takes text parts only.", part.At("type"));
                        contents.Add(new TextContent(part.RequiredString("text")));
                    }

                    break;
                case { } other: throw RequestBody.Wrong(m.At("content"), "a string or a list of text parts", other);
            }

            // An assistant turn's reasoning, as DeepSeek's and vLLM's APIs send it back (Qwen3's template reads it).
            if (m.String("reasoning_content") is { } reasoning) contents.Add(new TextReasoningContent(reasoning));

            if (roleName == "tool")
            {
                var callId = m.RequiredString("tool_call_id");
                result.Add(new AIChatMessage(ChatRole.Tool, [new FunctionResultContent(callId, string.Concat(contents.OfType<TextContent>().Select(c => c.Text)))]));
                continue;
            }

            foreach (var call in m.Objects("tool_calls"))
            {
                var function = call.Object("function") ?? throw ApiException.BadRequest($"'{call.At("function")}' is required.", call.At("function"));
                var arguments = function.String("arguments") is { Length: > 0 } json ? Arguments(json, function.At("arguments")) : [];
                contents.Add(new FunctionCallContent(call.String("id") ?? Guid.NewGuid().ToString("N")[..9], function.RequiredString("name"), arguments));
            }

            result.Add(new AIChatMessage(new ChatRole(roleName), contents));
        }

        return result;
    }

    /// <summary>A tool call's arguments: OpenAI sends them as a string holding a JSON object.</summary>
    private static Dictionary<string, object?> Arguments(string json, string at)
    {
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, object?>>(json) ?? throw ApiException.BadRequest($"'{at}' must hold a JSON object.", at);
        }
        catch (JsonException)
        {
            throw ApiException.BadRequest($"'{at}' must be a string holding a JSON object.", at);
        }
    }

    private static List<AITool>? Tools(RequestBody body)
    {
        if (body.List("tools") is null) return null;
        var tools = new List<AITool>();
        foreach (var tool in body.Objects("tools"))
        {
            var function = tool.Object("function") ?? throw ApiException.BadRequest($"'{tool.At("function")}' is required: {{\"type\": \"function\", \"function\": {{\"name\", ...}}}}.", tool.At("function"));
            // A tool without parameters takes none; OpenAI's default.
            var schema = function.Object("parameters")?.Root ?? EmptyParameters;
            tools.Add(AIFunctionFactory.CreateDeclaration(function.RequiredString("name"), function.String("description"), schema));
        }

        return tools;
    }

    private static readonly JsonElement EmptyParameters = JsonDocument.Parse("{\"type\": \"object\", \"properties\": {}}").RootElement;
}
