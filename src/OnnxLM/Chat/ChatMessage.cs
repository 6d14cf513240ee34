namespace OnnxLM.Chat;

/// <summary>
/// One turn of a conversation, as chat templates receive it: a role (<c>system</c>, <c>user</c>, <c>assistant</c>,
/// <c>tool</c>, or any the model's template knows), its text, and for tool use the calls an assistant made or the
/// call a tool result answers.
/// </summary>
/// <param name="Role">The speaker: <c>system</c>, <c>user</c>, <c>assistant</c>, <c>tool</c>…</param>
/// <param name="Content">The text; null for an assistant turn that only calls tools (the template sees no <c>content</c>).</param>
public sealed record ChatMessage(string Role, string? Content)
{
    /// <summary>The tool calls an assistant turn made (the template sees <c>message.tool_calls</c>).</summary>
    public IReadOnlyList<ChatToolCall>? ToolCalls { get; init; }

    /// <summary>For a <c>tool</c> turn: the id of the call it answers (<c>message.tool_call_id</c>).</summary>
    public string? ToolCallId { get; init; }

    /// <summary>For a <c>tool</c> turn: the tool's name (<c>message.name</c>).</summary>
    public string? Name { get; init; }

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

    /// <summary>The message as the template sees it: <c>role</c>, <c>content</c>, <c>tool_calls</c>, <c>tool_call_id</c>, <c>name</c>.</summary>
    internal Dictionary<string, object?> ToTemplateValue()
    {
        var value = new Dictionary<string, object?> { ["role"] = Role };
        if (Content is not null) value["content"] = Content;
        if (ToolCalls is { Count: > 0 } calls) value["tool_calls"] = calls.Select(c => (object?)c.ToTemplateValue()).ToList();
        if (ToolCallId is not null) value["tool_call_id"] = ToolCallId;
        if (Name is not null) value["name"] = Name;
        return value;
    }
}
