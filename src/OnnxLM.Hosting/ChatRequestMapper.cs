using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OnnxLM.Chat;
using OnnxLM.Sampling;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;
using OnnxChatMessage = OnnxLM.Chat.ChatMessage;

namespace OnnxLM.Hosting;

/// <summary>
/// Microsoft.Extensions.AI requests in OnnxLM's terms: messages (text, function calls and results) to chat-template
/// messages, <see cref="ChatOptions"/> to <see cref="GenerationOptions"/> by meaning, AI functions to chat tools.
/// </summary>
internal static class ChatRequestMapper
{
    /// <summary>The <c>AdditionalProperties</c> keys a request may set, and the option each sets.</summary>
    public static readonly IReadOnlyDictionary<string, Action<GenerationOptions, JsonElement>> Extras = new Dictionary<string, Action<GenerationOptions, JsonElement>>(StringComparer.Ordinal)
    {
        ["min_p"] = (o, v) => o.MinP = v.GetSingle(),
        ["typical_p"] = (o, v) => o.TypicalP = v.GetSingle(),
        ["top_n_sigma"] = (o, v) => o.TopNSigma = v.GetSingle(),
        ["epsilon_cutoff"] = (o, v) => o.EpsilonCutoff = v.GetSingle(),
        ["eta_cutoff"] = (o, v) => o.EtaCutoff = v.GetSingle(),
        ["repetition_penalty"] = (o, v) => o.RepetitionPenalty = v.GetSingle(),
        ["no_repeat_ngram_size"] = (o, v) => o.NoRepeatNGramSize = v.GetInt32(),
        ["min_new_tokens"] = (o, v) => o.MinNewTokens = v.GetInt32(),
        ["dry_multiplier"] = (o, v) => o.DryMultiplier = v.GetSingle(),
        ["dry_base"] = (o, v) => o.DryBase = v.GetSingle(),
        ["dry_allowed_length"] = (o, v) => o.DryAllowedLength = v.GetInt32(),
        ["xtc_probability"] = (o, v) => o.XtcProbability = v.GetSingle(),
        ["xtc_threshold"] = (o, v) => o.XtcThreshold = v.GetSingle(),
        ["mirostat"] = (o, v) => o.Mirostat = v.GetInt32(),
        ["mirostat_tau"] = (o, v) => o.MirostatTau = v.GetSingle(),
        ["mirostat_eta"] = (o, v) => o.MirostatEta = v.GetSingle(),
        ["grammar"] = (o, v) => o.Constraint = Constraints.OutputConstraint.Grammar(v.GetString() ?? throw new InvalidOperationException()),
        ["regex"] = (o, v) => o.Constraint = Constraints.OutputConstraint.Regex(v.GetString() ?? throw new InvalidOperationException()),
        ["sampler_order"] = (o, v) => o.SamplerOrder = v.GetString() switch
        {
            "hf" => GenerationOptions.HuggingFaceSamplerOrder,
            "llama.cpp" => GenerationOptions.LlamaCppSamplerOrder,
            var other => throw new ArgumentException($"sampler_order must be \"hf\" or \"llama.cpp\", not \"{other}\"."),
        },
    };

    /// <summary>The request's generation options: the raw representation a caller supplies (a <see cref="GenerationOptions"/>), else the host's defaults, then every set field of <paramref name="options"/>.</summary>
    public static GenerationOptions ToGenerationOptions(ChatOptions? options, OnnxLMGenerationDefaults defaults, IChatClient client)
    {
        var raw = options?.RawRepresentationFactory?.Invoke(client);
        if (raw is not null and not GenerationOptions)
        {
            throw new ArgumentException($"ChatOptions.RawRepresentationFactory returned a {raw.GetType().Name}; OnnxLM takes a GenerationOptions.");
        }

        var g = raw as GenerationOptions ?? new GenerationOptions
        {
            MaxNewTokens = defaults.MaxOutputTokens,
            Temperature = defaults.Temperature,
            TopP = defaults.TopP,
            TopK = defaults.TopK,
            RepetitionPenalty = defaults.RepetitionPenalty,
        };
        if (options is null) return g;
        if (options.Temperature is { } t) g.Temperature = t;
        if (options.TopP is { } p) g.TopP = p;
        if (options.TopK is { } k) g.TopK = k;
        if (options.MaxOutputTokens is { } max) g.MaxNewTokens = max;
        if (options.Seed is { } seed) g.Seed = GenerationOptions.FoldSeed(seed);

        if (options.StopSequences is { } stops)
        {
            foreach (var stop in stops) g.StopSequences.Add(stop);
        }

        g.SetOpenAIPenalties(options.PresencePenalty, options.FrequencyPenalty);

        if (options.AdditionalProperties is { } extras)
        {
            foreach (var (key, value) in extras)
            {
                if (key == "chat_template_kwargs") continue;
                if (!Extras.TryGetValue(key, out var set))
                {
                    throw new ArgumentException($"ChatOptions.AdditionalProperties has '{key}', which OnnxLM does not know; known keys: {string.Join(", ", Extras.Keys)}, chat_template_kwargs.");
                }

                try
                {
                    set(g, value is JsonElement e ? e : JsonSerializer.SerializeToElement(value));
                }
                catch (Exception ex) when (ex is InvalidOperationException or FormatException)
                {
                    throw new ArgumentException($"ChatOptions.AdditionalProperties['{key}'] has the value '{value}', which is not a {(key is "sampler_order" or "grammar" or "regex" ? "string" : "number")}.", ex);
                }
            }
        }

        return g;
    }

    /// <summary>Template variables a request passes through <c>AdditionalProperties["chat_template_kwargs"]</c> (a dictionary or a JSON object).</summary>
    public static IReadOnlyDictionary<string, object?>? TemplateVariables(ChatOptions? options)
    {
        if (options?.AdditionalProperties?.TryGetValue("chat_template_kwargs", out var value) != true || value is null) return null;
        return value switch
        {
            IEnumerable<KeyValuePair<string, object?>> pairs => pairs.ToDictionary(p => p.Key, p => p.Value),
            JsonElement { ValueKind: JsonValueKind.Object } e => e.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value),
            _ => throw new ArgumentException("ChatOptions.AdditionalProperties['chat_template_kwargs'] must be a dictionary or a JSON object."),
        };
    }

    /// <summary>The tools to render, or null: <see cref="ChatToolMode.None"/> renders none; a required tool needs constrained decoding, which OnnxLM does not have yet.</summary>
    public static List<ChatTool>? Tools(ChatOptions? options)
    {
        if (options?.Tools is not { Count: > 0 } tools || options.ToolMode is NoneChatToolMode) return null;
        if (options.ToolMode is RequiredChatToolMode)
        {
            throw new NotSupportedException("ChatToolMode.RequireAny and RequireSpecific need constrained decoding, which OnnxLM does not offer yet; use ChatToolMode.Auto.");
        }

        return [.. tools.Select(tool => tool is AIFunctionDeclaration f
            ? new ChatTool(f.Name, string.IsNullOrEmpty(f.Description) ? null : f.Description, f.JsonSchema)
            : throw new NotSupportedException($"The tool '{tool.Name}' is a {tool.GetType().Name}; OnnxLM runs function tools (AIFunctionDeclaration) only."))];
    }

    /// <summary>
    /// The conversation for the template: text, reasoning (<c>reasoning_content</c>), function calls (assistant) and
    /// function results (tool messages). A message without text content has <c>content: none</c>, as the OpenAI format's
    /// null; with <paramref name="contentParts"/> (a template that loops over content parts) each text content is one
    /// <c>{"type": "text"}</c> part, else the texts are joined. A message whose <see cref="AIChatMessage.RawRepresentation"/>
    /// is an OnnxLM <see cref="OnnxChatMessage"/> is rendered as that message.
    /// </summary>
    public static List<OnnxChatMessage> ToMessages(IEnumerable<AIChatMessage> messages, string? instructions, bool contentParts = false)
    {
        var result = new List<OnnxChatMessage>();
        if (!string.IsNullOrWhiteSpace(instructions)) result.Add(OnnxChatMessage.System(instructions));
        var callNames = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var message in messages)
        {
            ArgumentNullException.ThrowIfNull(message, nameof(messages));
            if (message.RawRepresentation is OnnxChatMessage raw)
            {
                result.Add(raw);
                continue;
            }

            var role = message.Role.Value;
            var texts = message.Contents.OfType<TextContent>().Select(c => c.Text).ToList();
            var text = texts.Count == 0 ? null : string.Concat(texts);
            var reasoning = message.Contents.OfType<TextReasoningContent>().Select(c => c.Text).ToList();
            var calls = new List<ChatToolCall>();
            foreach (var content in message.Contents)
            {
                switch (content)
                {
                    case TextContent or TextReasoningContent or UsageContent:
                        break;
                    case FunctionCallContent call:
                        callNames[call.CallId] = call.Name;
                        calls.Add(new ChatToolCall(call.Name, JsonSerializer.SerializeToElement(call.Arguments ?? new Dictionary<string, object?>()), call.CallId));
                        break;
                    case FunctionResultContent functionResult:
                        result.Add(OnnxChatMessage.Tool(ResultText(functionResult.Result), functionResult.CallId, callNames.GetValueOrDefault(functionResult.CallId)));
                        break;
                    default:
                        throw new NotSupportedException($"A {role} message has a {content.GetType().Name}; OnnxLM's language models take text, function calls and function results.");
                }
            }

            if (message.Contents.Any(c => c is FunctionResultContent) && string.IsNullOrEmpty(text) && calls.Count == 0)
            {
                continue; // a tool message made only of results: added above, one message per result
            }

            result.Add(new OnnxChatMessage(role, contentParts && text is not null ? null : text)
            {
                ContentParts = contentParts && text is not null ? [.. texts.Select(OnnxChatMessage.TextPart)] : null,
                ReasoningContent = reasoning.Count > 0 ? string.Concat(reasoning) : null,
                ToolCalls = calls.Count > 0 ? calls : null,
            });
        }

        return result;
    }

    private static string ResultText(object? result) => result switch
    {
        null => "",
        string s => s,
        JsonElement e => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText(),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => JsonSerializer.Serialize(result),
    };

    /// <summary>A parsed tool call as the abstraction's content, arguments as JSON values.</summary>
    public static FunctionCallContent ToContent(ChatToolCall call) => new(
        // The parser names every call it finds; a call built elsewhere without an id gets a fresh one, as the parser's.
        call.Id ?? System.Security.Cryptography.RandomNumberGenerator.GetString("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 9), call.Name,
        call.Arguments.ValueKind == JsonValueKind.Object
            ? call.Arguments.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone())
            : new Dictionary<string, object?>());
}
