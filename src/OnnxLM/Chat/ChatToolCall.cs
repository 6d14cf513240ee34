using System.Text.Json;

namespace OnnxLM.Chat;

/// <summary>A call of a tool: its name and arguments (a JSON object), and the id that the tool's result refers back to.</summary>
/// <param name="Name">The tool's name.</param>
/// <param name="Arguments">The arguments, a JSON object.</param>
/// <param name="Id">The call's id, when the model or the caller gave one (Mistral's templates require 9 alphanumeric characters).</param>
public sealed record ChatToolCall(string Name, JsonElement Arguments, string? Id = null)
{
    /// <summary>
    /// Splits a model's reply into its text and the tool calls it wrote, in the formats instruct models are trained on:
    /// Hermes / Qwen <c>&lt;tool_call&gt;</c> blocks, Mistral's <c>[TOOL_CALLS]</c> (a JSON list, or <c>name[ARGS]{…}</c>),
    /// and a reply that is itself a JSON call or list of calls (Llama 3.1, after <c>&lt;|python_tag|&gt;</c> or without it).
    /// Text that does not parse as a call stays content; nothing throws.
    /// </summary>
    /// <param name="text">The model's reply, decoded.</param>
    /// <returns>The reply without tool-call markup (trimmed when calls were found), and the calls in order.</returns>
    public static (string Content, IReadOnlyList<ChatToolCall> Calls) Parse(string text) => ToolCallParser.Parse(text);

    /// <summary>The call as templates see it: <c>{"id", "type": "function", "function": {"name", "arguments"}}</c>, as transformers passes it.</summary>
    internal Dictionary<string, object?> ToTemplateValue()
    {
        var value = new Dictionary<string, object?>();
        if (Id is not null) value["id"] = Id;
        value["type"] = "function";
        value["function"] = new Dictionary<string, object?> { ["name"] = Name, ["arguments"] = Arguments };
        return value;
    }
}
