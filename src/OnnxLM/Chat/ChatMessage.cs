namespace OnnxLM.Chat;

/// <summary>
/// One turn of a conversation, as chat templates receive it: a role (<c>system</c>, <c>user</c>, <c>assistant</c>,
/// <c>tool</c>, or any the model's template knows), its text, and for tool use the calls an assistant made or the
/// call a tool result answers.
/// </summary>
/// <remarks>
/// The template sees the message as the dict transformers' <c>apply_chat_template</c> passes for the OpenAI message
/// format: <c>role</c>, <c>content</c> (a string, <c>none</c>, or a list of parts), then <c>reasoning_content</c>,
/// <c>tool_calls</c>, <c>tool_call_id</c> and <c>name</c> where set, then <see cref="AdditionalProperties"/>.
/// </remarks>
/// <param name="Role">The speaker: <c>system</c>, <c>user</c>, <c>assistant</c>, <c>tool</c>…</param>
/// <param name="Content">
/// The text; null for an assistant turn that only calls tools, which the template sees as <c>content: none</c>
/// (as the OpenAI format's <c>"content": null</c>), or when <see cref="ContentParts"/> gives the content.
/// </param>
public sealed record ChatMessage(string Role, string? Content)
{
    private static readonly HashSet<string> OwnFields = ["role", "content", "reasoning_content", "tool_calls", "tool_call_id", "name"];

    /// <summary>The tool calls an assistant turn made (the template sees <c>message.tool_calls</c>).</summary>
    public IReadOnlyList<ChatToolCall>? ToolCalls { get; init; }

    /// <summary>For a <c>tool</c> turn: the id of the call it answers (<c>message.tool_call_id</c>).</summary>
    public string? ToolCallId { get; init; }

    /// <summary>For a <c>tool</c> turn: the tool's name (<c>message.name</c>).</summary>
    public string? Name { get; init; }

    /// <summary>
    /// An assistant turn's reasoning, kept apart from its answer (<c>message.reasoning_content</c>, read by Qwen3's
    /// and other thinking models' templates); null for none.
    /// </summary>
    public string? ReasoningContent { get; init; }

    /// <summary>
    /// The content as a list of parts, each a dict such as <c>{"type": "text", "text": "…"}</c> or <c>{"type": "image"}</c>
    /// (<see cref="TextPart"/> makes the first): the template sees <c>message.content</c> as this list, as Gemma-3's and
    /// multimodal templates expect. Null to use <see cref="Content"/>; setting both fails when the message is rendered.
    /// </summary>
    public IReadOnlyList<IReadOnlyDictionary<string, object?>>? ContentParts { get; init; }

    /// <summary>
    /// More fields of the message, passed to the template as they are (values as for template variables: strings,
    /// numbers, booleans, null, lists, dictionaries, JSON); null for none. A key may not repeat a field this record
    /// owns (<c>role</c>, <c>content</c>, <c>reasoning_content</c>, <c>tool_calls</c>, <c>tool_call_id</c>, <c>name</c>).
    /// </summary>
    public IReadOnlyDictionary<string, object?>? AdditionalProperties { get; init; }

    /// <summary>A system message.</summary>
    public static ChatMessage System(string content) => new("system", content);

    /// <summary>A user message.</summary>
    public static ChatMessage User(string content) => new("user", content);

    /// <summary>An assistant message, optionally with the tool calls it made.</summary>
    public static ChatMessage Assistant(string? content, params IReadOnlyList<ChatToolCall> toolCalls) =>
        new("assistant", content) { ToolCalls = toolCalls.Count > 0 ? toolCalls : null };

    /// <summary>A tool's result, answering the call <paramref name="toolCallId"/>.</summary>
    public static ChatMessage Tool(string content, string? toolCallId = null, string? name = null) =>
        new("tool", content) { ToolCallId = toolCallId, Name = name };

    /// <summary>A text part for <see cref="ContentParts"/>: <c>{"type": "text", "text": text}</c>.</summary>
    public static IReadOnlyDictionary<string, object?> TextPart(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new Dictionary<string, object?> { ["type"] = "text", ["text"] = text };
    }

    /// <summary>The message as the template sees it (see the remarks of <see cref="ChatMessage"/>).</summary>
    /// <exception cref="ArgumentException">Both <see cref="Content"/> and <see cref="ContentParts"/> are set, or <see cref="AdditionalProperties"/> repeats an own field.</exception>
    internal Dictionary<string, object?> ToTemplateValue()
    {
        if (Content is not null && ContentParts is not null)
        {
            throw new ArgumentException($"A '{Role}' message has both Content and ContentParts; set one of them.", "messages");
        }

        var value = new Dictionary<string, object?>
        {
            ["role"] = Role,
            ["content"] = ContentParts is { } parts ? parts.Select(p => (object?)(p ?? throw new ArgumentException($"A '{Role}' message has a null content part.", "messages"))).ToList() : Content,
        };
        if (ReasoningContent is not null) value["reasoning_content"] = ReasoningContent;
        if (ToolCalls is { Count: > 0 } calls) value["tool_calls"] = calls.Select(c => (object?)c.ToTemplateValue()).ToList();
        if (ToolCallId is not null) value["tool_call_id"] = ToolCallId;
        if (Name is not null) value["name"] = Name;
        if (AdditionalProperties is { } extra)
        {
            foreach (var (key, item) in extra)
            {
                if (OwnFields.Contains(key))
                {
                    throw new ArgumentException($"A '{Role}' message's AdditionalProperties has '{key}', a field ChatMessage sets itself; use its property instead.", "messages");
                }

                value[key] = item;
            }
        }

        return value;
    }
}
