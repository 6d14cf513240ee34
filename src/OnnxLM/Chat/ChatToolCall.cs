using System.Text.Json;

namespace OnnxLM.Chat;

/// <summary>A call of a tool: its name and arguments (a JSON object), and the id that the tool's result refers back to.</summary>
/// <param name="Name">The tool's name.</param>
/// <param name="Arguments">The arguments, a JSON object.</param>
/// <param name="Id">The call's id, when the model or the caller gave one (Mistral's templates require 9 alphanumeric characters).</param>
public sealed record ChatToolCall(string Name, JsonElement Arguments, string? Id = null)
{
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
