using System.Text.Json;

namespace OnnxLM.Chat;

/// <summary>A tool the model may call, described the way chat templates expect it: a name, a description and a JSON schema of its parameters.</summary>
/// <param name="Name">The tool's name, as the model should write it in a call.</param>
/// <param name="Description">What the tool does, for the model.</param>
/// <param name="Parameters">A JSON schema (an object schema) of the arguments; null for a tool without arguments.</param>
public sealed record ChatTool(string Name, string? Description = null, JsonElement? Parameters = null)
{
    private static readonly HashSet<string> OwnFields = ["name", "description", "parameters"];

    /// <summary>
    /// More fields of the tool's <c>function</c> object, after <c>name</c>, <c>description</c> and <c>parameters</c>
    /// (e.g. <c>return</c>, as transformers' <c>get_json_schema</c> writes a return value, or OpenAI's <c>strict</c>),
    /// passed to the template as they are; values as for template variables. Null for none. A key may not repeat
    /// <c>name</c>, <c>description</c> or <c>parameters</c>.
    /// </summary>
    public IReadOnlyDictionary<string, object?>? AdditionalProperties { get; init; }

    /// <summary>The tool as templates see it: <c>{"type": "function", "function": {"name", "description", "parameters", …}}</c>.</summary>
    /// <exception cref="ArgumentException"><see cref="AdditionalProperties"/> repeats an own field.</exception>
    internal Dictionary<string, object?> ToTemplateValue()
    {
        var function = new Dictionary<string, object?> { ["name"] = Name };
        if (Description is not null) function["description"] = Description;
        function["parameters"] = Parameters is { } p ? p : new Dictionary<string, object?> { ["type"] = "object", ["properties"] = new Dictionary<string, object?>() };
        if (AdditionalProperties is { } extra)
        {
            foreach (var (key, value) in extra)
            {
                function[key] = OwnFields.Contains(key)
                    ? throw new ArgumentException($"The tool '{Name}' has '{key}' in AdditionalProperties, a field ChatTool sets itself; use its property instead.", "tools")
                    : value;
            }
        }

        return new Dictionary<string, object?> { ["type"] = "function", ["function"] = function };
    }
}
