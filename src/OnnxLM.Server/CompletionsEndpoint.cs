using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;
using OnnxLM.Hosting;
using OnnxLM.Server.Wire;

namespace OnnxLM.Server;

/// <summary>
/// <c>POST /v1/completions</c>: OpenAI's legacy completions, with what evaluation needs — prompts as text or token ids,
/// <c>echo</c> with the prompt's own log-probabilities (<c>max_tokens: 0</c> scores without generating), <c>logprobs</c>
/// top-k, <c>n</c>, streaming.
/// </summary>
internal static class CompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext http, ServedModels models, OnnxLMServerOptions options)
    {
        var ct = http.RequestAborted;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var body = await RequestBody.ReadAsync(http.Request, ct);
        var (name, host) = models.Resolve(body.String("model"));
        var model = host.Model;
        var echo = body.Bool("echo");
        var logprobs = body.Int("logprobs", 0, 20);
        var n = body.Int("n", 1, options.MaxChoices) ?? 1;
        var stream = body.Bool("stream");
        var includeUsage = body.Object("stream_options")?.Bool("include_usage") ?? false;
        // vLLM's extension on completions; chat maps response_format through its IChatClient.
        var format = body.Object("response_format") is { } rf ? rf.RequiredString("type") : null;
        if (format is not null and not "text" and not "json_object")
        {
            throw ApiException.BadRequest($"'response_format.type' is '{format}'; completions take text or json_object.", "response_format.type");
        }

        var promptCount = PromptCount(body);
        if (promptCount > options.MaxPrompts)
        {
            throw ApiException.BadRequest($"'prompt' has {promptCount} prompts; this server takes at most {options.MaxPrompts} per request.", "prompt");
        }

        if ((long)promptCount * n > options.MaxTotalChoices)
        {
            throw ApiException.BadRequest($"{promptCount} prompts × n = {n} asks for {(long)promptCount * n} completions; this server makes at most {options.MaxTotalChoices} per request.", "n");
        }

        // Validated once, before any output (a stream cannot carry a 400 once started); each choice then gets its own options.
        body.ApplySampling(new GenerationOptions(), defaultMaxTokens: 16, options.MaxOutputTokens, minTokens: 0);
        var prompts = Prompts(body, model, ct);
        var id = "cmpl-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var choices = new List<CompletionChoice>();
        int promptTokens = 0, completionTokens = 0, index = 0;
        if (stream) StartStream(http);
        foreach (var (ids, text) in prompts)
        {
            promptTokens += ids.Length;
            if (ids.Length >= model.Info.ContextLength)
            {
                throw new ApiException(400, $"The prompt has {ids.Length} tokens; the context length of '{name}' is {model.Info.ContextLength}.", "prompt", "context_length_exceeded");
            }

            for (var choice = 0; choice < n; choice++, index++)
            {
                var generation = new GenerationOptions();
                body.ApplySampling(generation, defaultMaxTokens: 16, options.MaxOutputTokens, minTokens: 0);
                if (format == "json_object") generation.Constraint = Constraints.OutputConstraint.Json();
                if (generation.Seed is { } seed) generation.Seed = seed + choice;
                var generate = (body.Int("max_tokens", 0) ?? 16) > 0;
                generation.MaxNewTokens = Math.Min(generation.MaxNewTokens, model.Info.ContextLength - ids.Length);
                (string Text, CompletionLogProbs? LogProbs)? echoed = echo ? await Echo(model, ids, text, logprobs, ct) : null;
                var builder = new StringBuilder(echo ? echoed!.Value.Text : "");
                var lp = echoed?.LogProbs ?? (logprobs is not null ? new CompletionLogProbs() : null);
                string finish = "length";
                if (generate)
                {
                    generation.TopLogProbs = logprobs ?? 0; // from the same log-softmax as each token's own log-probability
                    if (stream && echo) await SendChunk(http, id, created, name, index, builder.ToString(), lp, null, ct);
                    using var lease = await Enter(host, ct);
                    await foreach (var token in model.GenerateStreamingAsync(ids, generation, ct))
                    {
                        completionTokens++;
                        CompletionLogProbs? delta = null;
                        if (lp is not null)
                        {
                            delta = new CompletionLogProbs();
                            foreach (var target in stream ? new[] { delta, lp } : new[] { lp })
                            {
                                target.Tokens.Add(model.Tokenizer.TokenText(token.Id));
                                target.TokenLogprobs.Add(token.LogProb);
                                target.TextOffset.Add(builder.Length);
                                target.TopLogprobs.Add(logprobs is not > 0 ? null : Top(model.Tokenizer, token.TopLogProbs));
                            }
                        }

                        builder.Append(token.Text);
                        if (token.FinishReason is { } f) finish = f == FinishReason.Stop ? "stop" : "length";
                        if (stream) await SendChunk(http, id, created, name, index, token.Text, delta, token.FinishReason is null ? null : finish, ct);
                    }
                }
                else if (stream)
                {
                    await SendChunk(http, id, created, name, index, builder.ToString(), lp, finish, ct);
                }

                choices.Add(new CompletionChoice(builder.ToString(), index, lp, finish));
            }
        }

        // The same instruments the chat client records, tagged as text completions.
        host.RecordUsage("text_completion", promptTokens, completionTokens, clock.Elapsed);
        // Completions run on the shared decode loop with no conversation cache: no prompt token is served from a cache.
        var usage = new CompletionUsage(promptTokens, completionTokens, promptTokens + completionTokens, new PromptTokensDetails(0));
        if (stream)
        {
            if (includeUsage) await Send(http, new Completion(id, TextCompletion, created, name, [], usage), ServerJson.Events.Completion, ct);
            await http.Response.WriteAsync("data: [DONE]\n\n", ct);
            return;
        }

        await http.Response.WriteAsJsonAsync(new Completion(id, TextCompletion, created, name, choices, usage), ServerJson.Body.Completion, contentType: null, ct);
    }

    internal static async Task<IDisposable> Enter(OnnxLMModelHost host, CancellationToken ct)
    {
        try
        {
            return await host.EnterQueueAsync(ct);
        }
        catch (OnnxLMQueueFullException e)
        {
            throw new ApiException(429, e.Message, code: "queue_full", type: "rate_limit_exceeded") { RetryAfter = TimeSpan.FromSeconds(1) };
        }
    }

    internal static void StartStream(HttpContext http)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
    }

    internal static async Task Send<T>(HttpContext http, T chunk, JsonTypeInfo<T> type, CancellationToken ct)
    {
        await http.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk, type) + "\n\n", ct);
        await http.Response.Body.FlushAsync(ct);
    }

    private const string TextCompletion = "text_completion";

    private static Task SendChunk(HttpContext http, string id, long created, string model, int index, string text, CompletionLogProbs? logprobs, string? finish, CancellationToken ct) =>
        Send(http, new Completion(id, TextCompletion, created, model, [new CompletionChoice(text, index, logprobs, finish)]), ServerJson.Events.Completion, ct);

    /// <summary>How many prompts the request sends, counted without tokenizing any.</summary>
    private static int PromptCount(RequestBody body) => body.Get("prompt") switch
    {
        { ValueKind: JsonValueKind.Array } list when list.GetArrayLength() > 0 && list[0].ValueKind is JsonValueKind.String or JsonValueKind.Array => list.GetArrayLength(),
        _ => 1,
    };

    /// <summary>The prompts: a string, a list of strings, a list of token ids, or a list of token-id lists.</summary>
    private static List<(int[] Ids, string? Text)> Prompts(RequestBody body, LanguageModel model, CancellationToken ct)
    {
        var prompt = body.Get("prompt") ?? throw ApiException.BadRequest("'prompt' is required.", "prompt");
        var vocab = model.Info.VocabularySize;
        int[] Ids(JsonElement list, string at)
        {
            if (list.ValueKind != JsonValueKind.Array) throw RequestBody.Wrong(at, "a list of token ids", list);
            var ids = list.EnumerateArray().Select((x, i) => RequestBody.Integer(x, $"{at}[{i}]")).ToArray();
            if (ids.Length == 0) throw ApiException.BadRequest("A token-id prompt is empty.", "prompt");
            if (ids.Any(i => i < 0 || i >= vocab)) throw ApiException.BadRequest($"Token id {ids.First(i => i < 0 || i >= vocab)} is outside the vocabulary (0..{vocab - 1}).", "prompt");
            return ids;
        }

        (int[], string?) FromText(string text)
        {
            var ids = model.Encode(text, null, ct);
            if (ids.Length == 0) throw ApiException.BadRequest("The prompt has no tokens.", "prompt");
            return (ids, text);
        }

        return prompt.ValueKind switch
        {
            JsonValueKind.String => [FromText(RequestBody.Text(prompt, "prompt"))],
            JsonValueKind.Array when prompt.GetArrayLength() == 0 => throw ApiException.BadRequest("'prompt' is an empty list.", "prompt"),
            JsonValueKind.Array when prompt[0].ValueKind == JsonValueKind.String => [.. prompt.EnumerateArray().Select((p, i) => FromText(RequestBody.Text(p, $"prompt[{i}]")))],
            JsonValueKind.Array when prompt[0].ValueKind == JsonValueKind.Number => [(Ids(prompt, "prompt"), null)],
            JsonValueKind.Array when prompt[0].ValueKind == JsonValueKind.Array => [.. prompt.EnumerateArray().Select((p, i) => (Ids(p, $"prompt[{i}]"), (string?)null))],
            _ => throw ApiException.BadRequest("'prompt' must be a string, a list of strings, a list of token ids or a list of token-id lists.", "prompt"),
        };
    }

    /// <summary>A token's alternatives as OpenAI's <c>top_logprobs</c> map (the first of two ids with one text wins).</summary>
    private static Dictionary<string, double> Top(TextTokenizer tokenizer, IReadOnlyList<TokenAlternative> alternatives)
    {
        var top = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var alternative in alternatives) top.TryAdd(tokenizer.TokenText(alternative.Id), alternative.LogProb);
        return top;
    }

    /// <summary>The echoed prompt and, with logprobs, each prompt token's log-probability given the tokens before it (the first has none).</summary>
    private static async Task<(string Text, CompletionLogProbs? LogProbs)> Echo(LanguageModel model, int[] ids, string? text, int? logprobs, CancellationToken ct)
    {
        var tokenizer = model.Tokenizer;
        var echoText = text ?? tokenizer.Decode(ids);
        if (logprobs is null) return (echoText, null);
        var lp = new CompletionLogProbs();
        // Offsets into the echoed text: the tokenizer's spans for a text prompt (when they line up with its ids), else the running length of the token texts.
        var spans = text is null ? null : tokenizer.EncodeToTokens(text).Select(t => t.Start).ToList();
        var offsets = spans is not null && spans.Count == ids.Length ? spans : [];
        if (offsets.Count == 0)
        {
            var at = 0;
            foreach (var id in ids)
            {
                offsets.Add(at);
                at += tokenizer.TokenText(id).Length;
            }
        }

        lp.Tokens.Add(tokenizer.TokenText(ids[0]));
        lp.TokenLogprobs.Add(null);
        lp.TopLogprobs.Add(null);
        lp.TextOffset.Add(offsets[0]);
        if (ids.Length > 1)
        {
            var context = ids[..1];
            var continuation = ids[1..];
            var score = await model.ScoreTokenIdsAsync(context, continuation, new ScoreOptions { TopAlternatives = logprobs.Value }, ct);
            for (var i = 0; i < score.Tokens.Count; i++)
            {
                var t = score.Tokens[i];
                lp.Tokens.Add(tokenizer.TokenText(t.Id));
                lp.TokenLogprobs.Add(t.LogProb);
                lp.TextOffset.Add(offsets[i + 1]);
                Dictionary<string, double>? top = null;
                if (logprobs > 0)
                {
                    top = [];
                    foreach (var alternative in t.Alternatives) top.TryAdd(tokenizer.TokenText(alternative.Id), alternative.LogProb);
                }

                lp.TopLogprobs.Add(top);
            }
        }

        return (echoText, lp);
    }
}
