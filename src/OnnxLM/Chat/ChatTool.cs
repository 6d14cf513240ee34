using System.Text.Json;

namespace OnnxLM.Chat;

/// <summary>A tool the model may call, described the way chat templates expect it: a name, a description and a JSON schema of its parameters.</summary>
/// <param name="Name">The tool's name, as the model should write it in a call.</param>
/// <param name="Description">What the tool does, for the model.</param>
/// <param name="Parameters">A JSON schema (an object schema) of the arguments; null for a tool without arguments.</param>
public sealed record ChatTool(string Name, string? Description = null, JsonElement? Parameters = null)
{
    /// <summary>The tool as templates see it: <c>{"type": "function", "function": {"name", "description", "parameters"}}</c>.</summary>
    internal Dictionary<string, object?> ToTemplateValue()
    {
        var function = new Dictionary<string, object?> { ["name"] = Name };
        if (Description is not null) function["description"] = Description;
        function["parameters"] = Parameters is { } p ? p : new Dictionary<string, object?> { ["type"] = "object", ["properties"] = new Dictionary<string, object?>() };
        return new Dictionary<string, object?> { ["type"] = "function", ["function"] = function };
    }
}
