using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using OnnxLM.Chat;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace OnnxLM.Hosting;

/// <summary>
/// A hosted OnnxLM model as a Microsoft.Extensions.AI <see cref="IChatClient"/>: the conversation is rendered with the
/// model's chat template, requests wait their turn in a bounded queue, a request that continues a cached
/// conversation prefills only its new tokens, and each one is logged, measured and traced. Thread-safe; the
/// container owns it (resolve it, do not dispose it).
/// </summary>
/// <remarks>
/// Messages reach the template as transformers receives the OpenAI format: a message without <see cref="TextContent"/>
/// has <c>content: none</c>; <see cref="TextReasoningContent"/> becomes <c>reasoning_content</c>; for a template that
/// loops over content parts (<see cref="ChatTemplate.ReadsContentParts"/>) each text is a <c>{"type": "text"}</c> part,
/// otherwise the texts are joined. A message whose <see cref="AIChatMessage.RawRepresentation"/> is an OnnxLM
/// <see cref="OnnxLM.Chat.ChatMessage"/> is rendered as that message (for image parts or other fields a template reads).
/// </remarks>
public sealed class OnnxLMChatClient : IChatClient
{
    private readonly OnnxLMModelHost _host;
    private readonly ChatClientMetadata _metadata;

    /// <summary>The <see cref="ChatResponseUpdate.AdditionalProperties"/> key of a streamed token's id.</summary>
    public const string TokenIdProperty = "onnxlm.token_id";

    /// <summary>The <see cref="ChatResponseUpdate.AdditionalProperties"/> key of a streamed token's log-probability under the model.</summary>
    public const string LogProbProperty = "onnxlm.logprob";

    /// <summary>
    /// The <see cref="ChatResponseUpdate.AdditionalProperties"/> key of a streamed token's most likely alternatives
    /// (<see cref="GeneratedToken.TopLogProbs"/>, present when the request's <see cref="GenerationOptions.TopLogProbs"/> is above 0).
    /// </summary>
    public const string TopLogProbsProperty = "onnxlm.top_logprobs";

    internal OnnxLMChatClient(OnnxLMModelHost host)
    {
        _host = host;
        _metadata = new ChatClientMetadata("onnxlm", new Uri("file://" + host.ModelPath.Replace('\\', '/')), host.ModelId);
    }

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false)) updates.Add(update);
        var response = updates.ToChatResponse();
        return response;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Text streams token by token. When tools are offered the reply is held back to the end, where its tool calls
    /// are parsed (<see cref="ChatToolCall.Parse"/>) into <see cref="FunctionCallContent"/>s rather than streamed as markup.
    /// </remarks>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (options?.ModelId is { } requested && requested != _host.ModelId)
        {
            throw new ArgumentException($"ChatOptions.ModelId is '{requested}', but this client serves '{_host.ModelId}'.", nameof(options));
        }


        var tools = ChatRequestMapper.Tools(options);
        var generation = ChatRequestMapper.ToGenerationOptions(options, _host.Options.Defaults, this);
        if (options?.ResponseFormat is ChatResponseFormatJson json)
        {
            if (options.AdditionalProperties is { } extras && (extras.ContainsKey("grammar") || extras.ContainsKey("regex")))
            {
                throw new ArgumentException("ChatOptions.ResponseFormat is JSON and AdditionalProperties also sets a grammar or regex; give one of them.", nameof(options));
            }

            // A schema: JSON text valid against it; no schema: a JSON object, OpenAI's json_object.
            generation.Constraint = json.Schema is { } schema ? OnnxLM.Constraints.OutputConstraint.JsonSchema(schema) : OnnxLM.Constraints.OutputConstraint.Json();
        }
        var conversation = ChatRequestMapper.ToMessages(messages, options?.Instructions, _host.ChatTemplate.ReadsContentParts);
        var model = _host.Model;
        var text = _host.ChatTemplate.Render(conversation, addGenerationPrompt: true, tools, ChatRequestMapper.TemplateVariables(options), cancellationToken: cancellationToken);
        var prompt = model.Encode(text, addBosToken: false, cancellationToken);
        if (prompt.Length == 0) throw new ArgumentException("The conversation renders as no tokens.", nameof(messages));
        if (prompt.Length >= model.Info.ContextLength)
        {
            throw new ContextLengthExceededException(prompt.Length + 1, model.Info.ContextLength,
                $"The conversation renders as {prompt.Length} tokens; the context length of '{_host.ModelId}' is {model.Info.ContextLength}.");
        }

        var requestId = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        using var activity = StartActivity(generation, options);
        if (_host.Options.LogContent) Log.Content(_host.Logger, requestId, "prompt", text);

        RequestQueue.Lease lease;
        try
        {
            lease = await _host.Queue.EnterAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OnnxLMQueueFullException)
        {
            Log.QueueFull(_host.Logger, _host.Queue.Waiting, _host.ModelId);
            throw;
        }

        var waited = clock.Elapsed;
        _host.Instruments.QueueWait.Record(waited.TotalSeconds, _host.Tags);
        var tokens = new List<GeneratedToken>();
        TimeSpan? firstToken = null;
        var succeeded = false;
        var reused = 0;
        using (lease)
        {
            // With continuous batching on, a request joins the model's shared decode loop; a request naming its conversation
            // (or any request, when generations decode alone anyway) keeps a cached session instead, so that the
            // conversation's next turn prefills only what is new.
            var session = options?.ConversationId is null && model.BatchesGenerations ? null : _host.Sessions.Rent(model, prompt, options?.ConversationId);
            try
            {
                IAsyncEnumerable<GeneratedToken> stream;
                if (session is null)
                {
                    stream = model.GenerateChatStreamingAsync(prompt, generation, cancellationToken);
                }
                else
                {
                    reused = session.Prefill(prompt, cancellationToken);
                    stream = session.GenerateStreamingAsync(generation, model.EndOfTurnTokenIds, cancellationToken);
                }

                Log.RequestStarted(_host.Logger, requestId, prompt.Length, reused, waited.TotalMilliseconds);
                await foreach (var token in stream.ConfigureAwait(false))
                {
                    firstToken ??= clock.Elapsed;
                    tokens.Add(token);
                    if (tools is null)
                    {
                        // Every token, even one whose text waits for the rest of its character: its log-probability travels with it.
                        var update = Update(requestId, created, [new TextContent(token.Text)]);
                        // What the OpenAI-compatible server turns into per-token logprobs.
                        update.AdditionalProperties = new() { [TokenIdProperty] = token.Id, [LogProbProperty] = token.LogProb };
                        if (token.TopLogProbs.Count > 0) update.AdditionalProperties[TopLogProbsProperty] = token.TopLogProbs;
                        yield return update;
                    }
                }

                succeeded = true;
            }
            finally
            {
                if (session is not null) _host.Sessions.Return(session, options?.ConversationId);
                if (!succeeded)
                {
                    var reason = cancellationToken.IsCancellationRequested ? "cancelled" : tokens.Count > 0 ? "stopped or failed while streaming" : "failed";
                    Log.RequestFailed(_host.Logger, requestId, reason, clock.Elapsed.TotalMilliseconds);
                    activity?.SetStatus(ActivityStatusCode.Error, reason);
                }
            }
        }

        var replyText = string.Concat(tokens.Select(t => t.Text));
        var contents = new List<AIContent>();
        ChatFinishReason finish = (tokens[^1].FinishReason ?? FinishReason.Length) == FinishReason.Stop ? ChatFinishReason.Stop : ChatFinishReason.Length;
        if (tools is not null)
        {
            var (content, calls) = ChatToolCall.Parse(replyText);
            if (content.Length > 0) contents.Add(new TextContent(content));
            contents.AddRange(calls.Select(ChatRequestMapper.ToContent));
            if (calls.Count > 0) finish = ChatFinishReason.ToolCalls;
        }

        var usage = new UsageDetails
        {
            InputTokenCount = prompt.Length,
            CachedInputTokenCount = reused, // prompt tokens a cached conversation already held
            OutputTokenCount = tokens.Count,
            TotalTokenCount = prompt.Length + tokens.Count,
        };
        contents.Add(new UsageContent(usage));
        var final = Update(requestId, created, contents);
        final.FinishReason = finish;
        Record(requestId, tokens.Count, usage, clock.Elapsed, firstToken ?? clock.Elapsed, finish, activity);
        if (_host.Options.LogContent) Log.Content(_host.Logger, requestId, "reply", replyText);
        yield return final;
    }

    private ChatResponseUpdate Update(string requestId, DateTimeOffset created, IList<AIContent> contents) => new(ChatRole.Assistant, contents)
    {
        ResponseId = requestId,
        MessageId = requestId,
        ModelId = _host.ModelId,
        CreatedAt = created,
    };

    private Activity? StartActivity(GenerationOptions generation, ChatOptions? options)
    {
        var activity = OnnxLMTelemetry.Source.StartActivity($"chat {_host.ModelId}", ActivityKind.Client);
        if (activity is null) return null;
        activity.SetTag("gen_ai.operation.name", "chat");
        activity.SetTag("gen_ai.provider.name", "onnxlm");
        activity.SetTag("gen_ai.request.model", _host.ModelId);
        activity.SetTag("gen_ai.request.max_tokens", generation.MaxNewTokens);
        activity.SetTag("gen_ai.request.temperature", generation.Temperature);
        activity.SetTag("gen_ai.request.top_p", generation.TopP);
        if (generation.TopK > 0) activity.SetTag("gen_ai.request.top_k", generation.TopK);
        if (options?.Seed is { } seed) activity.SetTag("gen_ai.request.seed", seed);
        if (options?.ConversationId is { } conversation) activity.SetTag("gen_ai.conversation.id", conversation);
        return activity;
    }

    private void Record(string requestId, int tokenCount, UsageDetails usage, TimeSpan elapsed, TimeSpan firstToken, ChatFinishReason finish, Activity? activity)
    {
        var tags = _host.Tags;
        KeyValuePair<string, object?>[] input = [.. tags, new("gen_ai.operation.name", "chat"), new("gen_ai.token.type", "input")];
        KeyValuePair<string, object?>[] output = [.. tags, new("gen_ai.operation.name", "chat"), new("gen_ai.token.type", "output")];
        KeyValuePair<string, object?>[] operation = [.. tags, new("gen_ai.operation.name", "chat"), new("gen_ai.response.model", _host.ModelId)];
        _host.Instruments.Tokens.Record(usage.InputTokenCount ?? 0, input);
        _host.Instruments.Tokens.Record(usage.OutputTokenCount ?? 0, output);
        _host.Instruments.Duration.Record(elapsed.TotalSeconds, operation);
        _host.Instruments.FirstToken.Record(firstToken.TotalSeconds, operation);
        if (tokenCount > 1)
        {
            _host.Instruments.PerToken.Record((elapsed - firstToken).TotalSeconds / (tokenCount - 1), operation);
        }

        activity?.SetTag("gen_ai.response.id", requestId);
        activity?.SetTag("gen_ai.response.model", _host.ModelId);
        activity?.SetTag("gen_ai.response.finish_reasons", new[] { finish.Value });
        activity?.SetTag("gen_ai.usage.input_tokens", usage.InputTokenCount);
        activity?.SetTag("gen_ai.usage.output_tokens", usage.OutputTokenCount);
        Log.RequestFinished(_host.Logger, requestId, finish.Value, (int)(usage.InputTokenCount ?? 0), (int)(usage.OutputTokenCount ?? 0),
            elapsed.TotalMilliseconds, firstToken.TotalMilliseconds);
    }

    /// <inheritdoc />
    /// <remarks>Answers <see cref="ChatClientMetadata"/>, the <see cref="LanguageModel"/> (loading it if needed) and this client.</remarks>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType == typeof(LanguageModel)) return _host.Model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Does nothing: the container owns the model and disposes it.</summary>
    public void Dispose()
    {
    }
}
