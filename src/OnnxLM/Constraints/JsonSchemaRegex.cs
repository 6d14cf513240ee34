using System.Text;
using System.Text.Json;

namespace OnnxLM.Constraints;

/// <summary>
/// Compiles a (non-recursive) JSON schema to a regular expression over its JSON text, in one canonical layout: at
/// most one space after <c>{ [ , :</c> and before <c>} ]</c>, properties in the schema's order (required ones always,
/// optional ones may be left out). Supported: <c>type</c> (string, number, integer, boolean, null, object, array, or a
/// list of them), <c>properties</c>, <c>required</c>, <c>additionalProperties: false</c>, <c>items</c>,
/// <c>minItems</c>/<c>maxItems</c>, <c>enum</c>, <c>const</c>, <c>pattern</c>, <c>minLength</c>/<c>maxLength</c>,
/// <c>format</c> (date, time, date-time, uuid, email), <c>anyOf</c>/<c>oneOf</c>, <c>$ref</c> into <c>$defs</c>/<c>definitions</c>;
/// annotations (<c>title</c>, <c>description</c>, <c>default</c>, <c>examples</c>, <c>$schema</c>, <c>$id</c>) are ignored.
/// Anything else is a <see cref="NotSupportedException"/> naming the keyword, never silently dropped.
/// </summary>
/// <remarks>
/// The regular expression is text, so a part used twice is written twice: references used from several places, and
/// nested objects, multiply. Its length is checked at every step against a budget (a
/// <see cref="ConstraintTooLargeException"/> past it), so no schema can make it grow without bound; repetition counts
/// (<c>maxItems</c>, <c>maxLength</c>) stay counts here and are priced by <see cref="RegexConstraint"/>.
/// </remarks>
internal static class JsonSchemaRegex
{
    private const string Ws = "[ ]?";
    private const string StringChar = "(?:[^\"\\\\\\x00-\\x1f]|\\\\[\"\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4})";
    private const string Integer = "-?(?:0|[1-9][0-9]*)";
    private const string Number = Integer + "(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?";

    // Non-ASCII stays as written ("día", not "d\u00EDa"), so enum values and property names read as the schema gives them.
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly HashSet<string> Annotations = ["title", "description", "default", "examples", "$schema", "$id", "$comment", "$defs", "definitions"];
    private static readonly HashSet<string> Supported =
        ["type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "enum", "const", "pattern", "minLength", "maxLength", "format", "anyOf", "oneOf", "$ref"];

    // RFC 3339 as JSON Schema's formats use it: real calendar dates (30-day months, February 29 only in leap years),
    // and full-time with its offset.
    private const string LeapYear = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)";
    private const string Date = "(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|" + LeapYear + "-02-29)";
    private const string Time = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";

    private static readonly Dictionary<string, string> Formats = new()
    {
        ["date"] = Date,
        ["time"] = Time,
        ["date-time"] = Date + "T" + Time,
        ["uuid"] = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        ["email"] = "[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}",
    };

    /// <summary>The schema's regex; one leading space is allowed, as JSON mode allows it (SentencePiece models often start with "▁{").</summary>
    /// <param name="schema">The schema.</param>
    /// <param name="maxLength">The longest regex allowed (<see cref="ConstraintLimits.MaxAutomatonSize"/>).</param>
    /// <exception cref="ConstraintTooLargeException">The regex would be longer than <paramref name="maxLength"/>.</exception>
    public static string Compile(JsonElement schema, int maxLength = ConstraintLimits.DefaultMaxAutomatonSize) =>
        Ws + Compile(schema, new Scope(schema, maxLength));

    /// <summary>What one compilation carries down: the root for references, the references being expanded, the length budget.</summary>
    private sealed class Scope(JsonElement root, int maxLength)
    {
        public JsonElement Root => root;

        public HashSet<string> Refs { get; } = [];

        /// <summary><paramref name="parts"/> joined by <paramref name="separator"/>, checked as it grows so no more than the budget is ever built.</summary>
        public string Join(string separator, IEnumerable<string> parts)
        {
            var text = new StringBuilder();
            foreach (var part in parts)
            {
                if (text.Length > 0) Append(text, separator);
                Append(text, part);
            }

            return text.ToString();
        }

        /// <summary>The concatenation of <paramref name="parts"/>, refused before it passes the budget.</summary>
        public string Concat(params ReadOnlySpan<string> parts)
        {
            long length = 0;
            foreach (var part in parts) length += part.Length;
            Check(length);
            return string.Concat(parts);
        }

        private void Append(StringBuilder text, string part)
        {
            Check((long)text.Length + part.Length);
            text.Append(part);
        }

        private void Check(long length)
        {
            if (length <= maxLength) return;
            throw new ConstraintTooLargeException(nameof(ConstraintLimits.MaxAutomatonSize), maxLength,
                $"The JSON schema compiles to a regular expression longer than {maxLength.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} characters (a part used in several places, such as a reference or a nested object, is written out each time).",
                "schema");
        }
    }

    private static string Compile(JsonElement node, Scope scope)
    {
        if (node.ValueKind == JsonValueKind.True) return Any();
        if (node.ValueKind != JsonValueKind.Object) throw new NotSupportedException($"A schema must be an object or true, not {node.ValueKind}.");
        foreach (var property in node.EnumerateObject())
        {
            if (!Supported.Contains(property.Name) && !Annotations.Contains(property.Name))
            {
                throw new NotSupportedException($"The JSON schema keyword '{property.Name}' is not supported by OnnxLM's constrained decoding.");
            }
        }

        CheckValues(node);
        if (node.TryGetProperty("$ref", out var reference))
        {
            var path = reference.GetString() ?? "";
            if (!scope.Refs.Add(path)) throw new NotSupportedException($"The schema refers to '{path}' recursively; recursive schemas are not supported.");
            var target = Resolve(scope.Root, path);
            var compiled = Compile(target, scope);
            scope.Refs.Remove(path);
            return compiled;
        }

        if (node.TryGetProperty("const", out var constant)) return Literal(constant);
        if (node.TryGetProperty("enum", out var choices)) return scope.Concat("(?:", scope.Join("|", choices.EnumerateArray().Select(Literal)), ")");
        if (node.TryGetProperty("anyOf", out var anyOf) || node.TryGetProperty("oneOf", out anyOf))
        {
            return scope.Concat("(?:", scope.Join("|", anyOf.EnumerateArray().Select(s => Compile(s, scope))), ")");
        }

        if (!node.TryGetProperty("type", out var type))
        {
            return node.TryGetProperty("properties", out _) ? Object(node, scope) : Any();
        }

        if (type.ValueKind == JsonValueKind.Array)
        {
            return scope.Concat("(?:", scope.Join("|", type.EnumerateArray().Select(t => ForType(t.GetString()!, node, scope))), ")");
        }

        return ForType(type.GetString()!, node, scope);
    }

    /// <summary>Each keyword's value has the kind the JSON Schema specification gives it; anything else is an invalid schema.</summary>
    private static void CheckValues(JsonElement node)
    {
        foreach (var property in node.EnumerateObject())
        {
            var value = property.Value;
            var kind = value.ValueKind;
            string? expected = property.Name switch
            {
                "type" when kind is not JsonValueKind.String && !(kind is JsonValueKind.Array && value.EnumerateArray().All(t => t.ValueKind == JsonValueKind.String))
                    => "a type name or a list of type names",
                "properties" or "$defs" or "definitions" when kind is not JsonValueKind.Object => "an object",
                "required" when !(kind is JsonValueKind.Array && value.EnumerateArray().All(t => t.ValueKind == JsonValueKind.String)) => "a list of property names",
                "items" or "additionalProperties" when kind is not (JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False) => "a schema or a boolean",
                "minItems" or "maxItems" or "minLength" or "maxLength" when !(kind is JsonValueKind.Number && value.TryGetInt32(out var n) && n >= 0) => "a non-negative integer",
                "enum" when kind is not JsonValueKind.Array || value.GetArrayLength() == 0 => "a non-empty list",
                "anyOf" or "oneOf" when kind is not JsonValueKind.Array || value.GetArrayLength() == 0 => "a non-empty list of schemas",
                "pattern" or "format" or "$ref" when kind is not JsonValueKind.String => "a string",
                _ => null,
            };
            if (expected is not null) throw new InvalidOptionException("schema", $"The JSON schema's '{property.Name}' must be {expected}, not {value.GetRawText()}.");
        }
    }

    private static string ForType(string type, JsonElement node, Scope scope) => type switch
    {
        "string" => scope.Concat(StringPattern(node)),
        "integer" => Integer,
        "number" => Number,
        "boolean" => "(?:true|false)",
        "null" => "null",
        "object" => Object(node, scope),
        "array" => Array(node, scope),
        _ => throw new NotSupportedException($"The JSON schema type '{type}' is not known."),
    };

    private static string StringPattern(JsonElement node)
    {
        if (node.TryGetProperty("format", out var format))
        {
            var name = format.GetString()!;
            return Formats.TryGetValue(name, out var pattern) ? $"\"{pattern}\"" : throw new NotSupportedException($"The string format '{name}' is not supported (date, time, date-time, uuid, email are).");
        }

        if (node.TryGetProperty("pattern", out var regex)) return $"\"(?:{regex.GetString()})\"";
        var min = node.TryGetProperty("minLength", out var minLength) ? minLength.GetInt32() : 0;
        int? max = node.TryGetProperty("maxLength", out var maxLength) ? maxLength.GetInt32() : null;
        if (min > max) throw new InvalidOptionException("schema", $"The JSON schema's minLength {min} is above its maxLength {max}: no string satisfies it.");
        return $"\"{StringChar}{{{min},{max?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? ""}}}\"".Replace("{0,}", "*", StringComparison.Ordinal);
    }

    private static string Object(JsonElement node, Scope scope)
    {
        var required = node.TryGetProperty("required", out var r) ? r.EnumerateArray().Select(x => x.GetString()!).ToHashSet() : [];
        var members = new List<(string Text, bool Required)>();
        if (node.TryGetProperty("properties", out var p))
        {
            foreach (var property in p.EnumerateObject())
            {
                var text = scope.Concat(RegexConstraint.Escape(JsonSerializer.Serialize(property.Name, Relaxed)), Ws, ":", Ws, Compile(property.Value, scope));
                members.Add((text, required.Contains(property.Name)));
            }
        }

        if (members.Count == 0) return "\\{" + Ws + "\\}";

        // The members from i on after a member (each leads with a comma): an optional one is simply "(?:, m)?". Built
        // from the end and kept, since every "nothing yet" alternative below reuses them.
        var afterMember = new string[members.Count + 1];
        afterMember[members.Count] = "";
        for (var i = members.Count - 1; i >= 0; i--)
        {
            afterMember[i] = members[i].Required
                ? scope.Concat(",", Ws, members[i].Text, afterMember[i + 1])
                : scope.Concat("(?:,", Ws, members[i].Text, ")?", afterMember[i + 1]);
        }

        // The members from i on with none before them: the first present one leads without a comma, so each optional
        // member branches into "present, the rest after it" or "absent, still none before".
        var first = "";
        for (var i = members.Count - 1; i >= 0; i--)
        {
            var present = scope.Concat(members[i].Text, afterMember[i + 1]);
            first = members[i].Required ? present : scope.Concat("(?:", present, "|", first, ")");
        }

        return scope.Concat("\\{", Ws, first, Ws, "\\}");
    }

    private static string Array(JsonElement node, Scope scope)
    {
        var item = node.TryGetProperty("items", out var items) ? Compile(items, scope) : Any();
        var min = node.TryGetProperty("minItems", out var minItems) ? minItems.GetInt32() : 0;
        int? max = node.TryGetProperty("maxItems", out var maxItems) ? maxItems.GetInt32() : null;
        if (min > max) throw new InvalidOptionException("schema", $"The JSON schema's minItems {min} is above its maxItems {max}: no array satisfies it.");
        if (max is 0) return "\\[" + Ws + "\\]";
        var count = $"{{{Math.Max(0, min - 1)},{(max is { } m ? (m - 1).ToString(System.Globalization.CultureInfo.InvariantCulture) : "")}}}";
        var list = scope.Concat(item, "(?:,", Ws, item, ")", count);
        return min == 0 ? scope.Concat("\\[", Ws, "(?:", list, ")?", Ws, "\\]") : scope.Concat("\\[", Ws, list, Ws, "\\]");
    }

    /// <summary>Any JSON value without nesting beyond two levels (a regular language needs a bound).</summary>
    private static string Any()
    {
        var scalar = $"(?:\"{StringChar}*\"|{Number}|true|false|null)";
        var level1 = $"(?:{scalar}|\\[{Ws}(?:{scalar}(?:,{Ws}{scalar})*)?{Ws}\\]|\\{{{Ws}(?:\"{StringChar}*\"{Ws}:{Ws}{scalar}(?:,{Ws}\"{StringChar}*\"{Ws}:{Ws}{scalar})*)?{Ws}\\}})";
        return level1;
    }

    private static string Literal(JsonElement value) => RegexConstraint.Escape(JsonSerializer.Serialize(value, Relaxed));

    private static JsonElement Resolve(JsonElement root, string path)
    {
        if (path == "#") return root;
        if (!path.StartsWith("#/", StringComparison.Ordinal)) throw new NotSupportedException($"Only references within the schema (#/...) are supported, not '{path}'.");
        var node = root;
        foreach (var part in path[2..].Split('/'))
        {
            if (!node.TryGetProperty(part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal), out node))
            {
                throw new NotSupportedException($"The reference '{path}' points nowhere in the schema.");
            }
        }

        return node;
    }
}
