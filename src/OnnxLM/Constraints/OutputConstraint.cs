namespace OnnxLM.Constraints;

/// <summary>
/// A shape the generated text must have. Generation then only picks tokens that keep the text a prefix of some
/// valid output, allows the end token exactly when the text is complete, and stops once nothing else can follow.
/// Built-ins: <see cref="Regex"/>, <see cref="Choice"/>, <see cref="Json"/>. Set it as <see cref="GenerationOptions.Constraint"/>.
/// </summary>
public abstract class OutputConstraint
{
    /// <summary>The state before any text.</summary>
    internal abstract object Start { get; }

    /// <summary>The state after one more character, or null when no valid output continues with it.</summary>
    internal abstract object? Step(object state, char c);

    /// <summary>Whether the text so far is a whole valid output (the end token may follow).</summary>
    internal abstract bool IsComplete(object state);

    /// <summary>Whether the text is complete and nothing may follow it (generation stops there).</summary>
    internal abstract bool IsFinal(object state);

    /// <summary>A stable key of a state, when states repeat (regex), so the allowed tokens can be cached per state; null when they do not.</summary>
    internal virtual int? CacheKey(object state) => null;

    /// <summary>Text matching a regular expression as a whole (<c>.</c>, <c>[...]</c>, <c>[^...]</c>, <c>\d \w \s</c> and their negations, <c>* + ? {m,n}</c>, <c>|</c>, groups).</summary>
    /// <exception cref="ArgumentException">The pattern is invalid or uses unsupported syntax (backreferences, lookaround, anchors inside).</exception>
    public static OutputConstraint Regex(string pattern) => new RegexConstraint(pattern);

    /// <summary>Exactly one of the given strings.</summary>
    public static OutputConstraint Choice(params IReadOnlyList<string> choices)
    {
        ArgumentNullException.ThrowIfNull(choices);
        if (choices.Count == 0 || choices.Any(string.IsNullOrEmpty)) throw new ArgumentException("Choice needs at least one non-empty string.", nameof(choices));
        return new RegexConstraint(string.Join('|', choices.Select(RegexConstraint.Escape)));
    }

    /// <summary>
    /// JSON text that validates against a (non-recursive) JSON schema, laid out canonically (see the supported
    /// keywords on <see cref="JsonSchemaRegex"/>): compiled to a regular expression over the JSON text.
    /// </summary>
    /// <exception cref="NotSupportedException">The schema uses a keyword, format or reference OnnxLM cannot compile; the message names it.</exception>
    public static OutputConstraint JsonSchema(System.Text.Json.JsonElement schema) => new RegexConstraint(JsonSchemaRegex.Compile(schema));

    /// <summary>
    /// A valid JSON document (RFC 8259): a JSON object by default (OpenAI's <c>json_object</c> mode), any JSON value with
    /// <paramref name="objectOnly"/> false. Whitespace between tokens is limited to short runs so a model cannot pad forever.
    /// </summary>
    public static OutputConstraint Json(bool objectOnly = true, int maxDepth = 32) => new JsonConstraint(objectOnly, maxDepth);
}
