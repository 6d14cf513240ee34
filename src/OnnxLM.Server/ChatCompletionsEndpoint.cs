using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
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
        if ((body.Int("n", 1, 1) ?? 1) != 1) throw ApiException.BadRequest("'n' must be 1 for chat completions.", "n");
        var messages = Messages(body);
        var generation = new GenerationOptions();
        body.ApplySampling(generation, defaultMaxTokens: 512, server.MaxOutputTokens);
        var logprobs = body.Bool("logprobs");
        var topLogprobs = body.Int("top_logprobs", 0, 20) ?? 0;
        if (topLogprobs > 0 && !logprobs) throw ApiException.BadRequest("'top_logprobs' needs 'logprobs': true.", "top_logprobs");
        if (generation.Constraint is not null && body.Get("response_format") is { } requested && requested.TryGetProperty("type", out var kind) && kind.GetString() != "text")
        {
            throw ApiException.BadRequest("'response_format' and a regex, grammar or guided_choice constrain the output twice; give one of them.", "response_format");
        }

        var recorder = logprobs && topLogprobs > 0 ? new TopLogProbRecorder(topLogprobs) : null;
        if (recorder is not null) generation.LogitProcessors.Add(recorder);
        var options = new ChatOptions
        {
            RawRepresentationFactory = _ => generation,
            Tools = Tools(body),
            ToolMode = body.Get("tool_choice") is { ValueKind: JsonValueKind.String } choice && choice.GetString() == "none" ? ChatToolMode.None : null,
            ResponseFormat = body.Get("response_format") is { } format && format.TryGetProperty("type", out var type) ? type.GetString() switch
            {
                "json_object" => ChatResponseFormat.Json,
                "text" => ChatResponseFormat.Text,
                "json_schema" => format.TryGetProperty("json_schema", out var js) && js.TryGetProperty("schema", out var schema) && schema.ValueKind == JsonValueKind.Object
                    ? ChatResponseFormat.ForJsonSchema(schema.Clone(), js.TryGetProperty("name", out var n) ? n.GetString() : null)
                    : throw ApiException.BadRequest("'response_format' json_schema needs 'json_schema': {\"name\", \"schema\": {...}}.", "response_format"),
                var other => throw ApiException.BadRequest($"'response_format' type '{other}' is not text or json_object.", "response_format"),
            } : null,
        };
        var client = models.ChatClient(name);
        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var (_, host) = models.Resolve(name);
        var tokenizer = host.Model.Tokenizer;
        var step = 0;
        object? LogProbEntry(ChatResponseUpdate update)
        {
            if (!logprobs || update.AdditionalProperties?.TryGetValue(OnnxLM.Hosting.OnnxLMChatClient.LogProbProperty, out var lp) != true) return null;
            var tokenId = (int)update.AdditionalProperties[OnnxLM.Hosting.OnnxLMChatClient.TokenIdProperty]!;
            var text = update.Text;
            var top = recorder is not null && step < recorder.Steps.Count
                ? recorder.Steps[step].Select(t => new { token = tokenizer.TokenText(t.Id), logprob = t.LogProb, bytes = Bytes(tokenizer.TokenText(t.Id)) }).ToArray()
                : [];
            step++;
            return new { token = text, logprob = (double)lp!, bytes = Bytes(text), top_logprobs = top };
        }

        if (!body.Bool("stream"))
        {
            var updates = new List<ChatResponseUpdate>();
            var entries = new List<object>();
            await foreach (var update in client.GetStreamingResponseAsync(messages, options, ct))
            {
                updates.Add(update);
                if (LogProbEntry(update) is { } entry) entries.Add(entry);
            }

            var response = updates.ToChatResponse();
            var message = response.Messages.LastOrDefault();
            var calls = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Select(ToolCall).ToList();
            await http.Response.WriteAsJsonAsync(new
            {
                id, @object = "chat.completion", created, model = name,
                choices = new[]
                {
                    new
                    {
                        index = 0,
                        message = new { role = "assistant", content = calls.Count > 0 && string.IsNullOrEmpty(response.Text) ? null : response.Text, tool_calls = calls.Count > 0 ? calls : null },
                        logprobs = logprobs ? new { content = entries } : null,
                        finish_reason = Finish(response.FinishReason),
                    },
                },
                usage = Usage(response.Usage),
            }, ct);
            return;
        }

        var includeUsage = body.Get("stream_options") is { } so && so.TryGetProperty("include_usage", out var iu) && iu.ValueKind == JsonValueKind.True;
        CompletionsEndpoint.StartStream(http);
        await CompletionsEndpoint.Send(http, Chunk(id, created, name, new { role = "assistant", content = "" }, null), ct);
        UsageDetails? usage = null;
        await foreach (var update in client.GetStreamingResponseAsync(messages, options, ct))
        {
            var entry = LogProbEntry(update);
            if (update.Text.Length > 0 || entry is not null)
            {
                await CompletionsEndpoint.Send(http, entry is null ? Chunk(id, created, name, new { content = update.Text }, null)
                    : new { id, @object = "chat.completion.chunk", created, model = name, choices = new[] { new { index = 0, delta = (object)new { content = update.Text }, logprobs = (object?)new { content = new[] { entry } }, finish_reason = (string?)null } } }, ct);
            }
            var calls = update.Contents.OfType<FunctionCallContent>().Select((c, i) => new { index = i, id = c.CallId, type = "function", function = new { name = c.Name, arguments = JsonSerializer.Serialize(c.Arguments) } }).ToList();
            if (calls.Count > 0) await CompletionsEndpoint.Send(http, Chunk(id, created, name, new { tool_calls = calls }, null), ct);
            usage = update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details ?? usage;
            if (update.FinishReason is { } finish) await CompletionsEndpoint.Send(http, Chunk(id, created, name, new { }, Finish(finish)), ct);
        }

        if (includeUsage) await CompletionsEndpoint.Send(http, new { id, @object = "chat.completion.chunk", created, model = name, choices = Array.Empty<object>(), usage = Usage(usage) }, ct);
        await http.Response.WriteAsync("data: [DONE]\n\n", ct);
    }

    /// <summary>A token's UTF-8 bytes as OpenAI writes them: a list of integers.</summary>
    private static int[] Bytes(string text) => [.. System.Text.Encoding.UTF8.GetBytes(text).Select(b => (int)b)];

    private static object Chunk(string id, long created, string model, object delta, string? finish) =>
        new { id, @object = "chat.completion.chunk", created, model, choices = new[] { new { index = 0, delta, finish_reason = finish } } };

    private static string Finish(ChatFinishReason? reason) =>
        reason == ChatFinishReason.ToolCalls ? "tool_calls" : reason == ChatFinishReason.Length ? "length" : "stop";

    private static object Usage(UsageDetails? usage) => new
    {
        prompt_tokens = usage?.InputTokenCount ?? 0,
        completion_tokens = usage?.OutputTokenCount ?? 0,
        total_tokens = usage?.TotalTokenCount ?? 0,
        prompt_tokens_details = new { cached_tokens = usage?.CachedInputTokenCount ?? 0 },
    };

    private static object ToolCall(FunctionCallContent call) =>
        new { id = call.CallId, type = "function", function = new { name = call.Name, arguments = JsonSerializer.Serialize(call.Arguments) } };

    private static List<AIChatMessage> Messages(RequestBody body)
    {
        var list = body.Get("messages") is { ValueKind: JsonValueKind.Array } array && array.GetArrayLength() > 0
            ? array : throw ApiException.BadRequest("'messages' must be a non-empty list.", "messages");
        var result = new List<AIChatMessage>();
        var index = 0;
        foreach (var m in list.EnumerateArray())
        {
            var at = $"messages[{index++}]";
            if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
            {
                throw ApiException.BadRequest($"{at} must be an object with a string 'role'.", at);
            }

            var contents = new List<AIContent>();
            if (m.TryGetProperty("content", out var content))
            {
                switch (content.ValueKind)
                {
                    case JsonValueKind.String: contents.Add(new TextContent(content.GetString())); break;
                    case JsonValueKind.Null: break;
                    case JsonValueKind.Array:
                        foreach (var part in content.EnumerateArray())
                        {
                            if (part.TryGetProperty("type", out var t) && t.GetString() == "text" && part.TryGetProperty("text", out var text)) contents.Add(new TextContent(text.GetString()));
                            else throw ApiException.BadRequest($"{at}.content has a part that is not text; this server takes text only.", at);
                        }

                        break;
                    default: throw ApiException.BadRequest($"{at}.content must be a string or a list of text parts.", at);
                }
            }

            var roleName = role.GetString()!;
            if (roleName == "tool")
            {
                var callId = m.TryGetProperty("tool_call_id", out var tc) ? tc.GetString() : throw ApiException.BadRequest($"{at} (a tool message) needs 'tool_call_id'.", at);
                result.Add(new AIChatMessage(ChatRole.Tool, [new FunctionResultContent(callId!, string.Concat(contents.OfType<TextContent>().Select(c => c.Text)))]));
                continue;
            }

            if (m.TryGetProperty("tool_calls", out var toolCalls) && toolCalls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in toolCalls.EnumerateArray())
                {
                    var function = call.GetProperty("function");
                    var args = function.TryGetProperty("arguments", out var a) && a.ValueKind == JsonValueKind.String && a.GetString() is { Length: > 0 } json
                        ? JsonSerializer.Deserialize<Dictionary<string, object?>>(json) : new Dictionary<string, object?>();
                    contents.Add(new FunctionCallContent(call.TryGetProperty("id", out var cid) ? cid.GetString()! : Guid.NewGuid().ToString("N")[..9], function.GetProperty("name").GetString()!, args));
                }
            }

            result.Add(new AIChatMessage(new ChatRole(roleName), contents));
        }

        return result;
    }

    private static List<AITool>? Tools(RequestBody body)
    {
        if (body.Get("tools") is not { ValueKind: JsonValueKind.Array } tools) return null;
        return [.. tools.EnumerateArray().Select((t, i) =>
        {
            if (!t.TryGetProperty("function", out var f) || !f.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
            {
                throw ApiException.BadRequest($"tools[{i}] must be {{\"type\": \"function\", \"function\": {{\"name\", ...}}}}.", $"tools[{i}]");
            }

            var schema = f.TryGetProperty("parameters", out var p) ? p : JsonDocument.Parse("{\"type\": \"object\", \"properties\": {}}").RootElement;
            return (AITool)AIFunctionFactory.CreateDeclaration(name.GetString()!, f.TryGetProperty("description", out var d) ? d.GetString() : null, schema);
        })];
    }
}
