namespace OnnxLM.Constraints;

/// <summary>
/// A shape the generated text must have. Generation then only picks tokens that keep the text a prefix of some
/// valid output, allows the end token exactly when the text is complete, and stops once nothing else can follow.
/// Built-ins: <see cref="Regex"/>, <see cref="Choice(IReadOnlyList{string})"/>, <see cref="Json"/>, <see cref="JsonSchema"/> and <see cref="Grammar"/>.
/// Set it as <see cref="GenerationOptions.Constraint"/>. A constraint is immutable and may be shared by concurrent
/// generations; the tokens each of its states allows are computed once per vocabulary and reused.
/// </summary>
/// <remarks>
/// Text is checked as UTF-8 bytes, so a token that holds only part of a character is allowed exactly when some
/// character completes it validly. Special tokens are never allowed as text. Every factory that compiles an automaton
/// takes optional <see cref="ConstraintLimits"/> bounding its size; one too large is a <see cref="ConstraintTooLargeException"/>.
/// </remarks>
public abstract class OutputConstraint
{
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<TokenTrie, AllowedTokenCache> _allowed = [];

    /// <summary>The state before any text.</summary>
    internal abstract object Start { get; }

    /// <summary>The state after one more byte of UTF-8 text, or null when no valid output continues with it.</summary>
    internal abstract object? Step(object state, byte b);

    /// <summary>Whether the text so far is a whole valid output (the end token may follow).</summary>
    internal abstract bool IsComplete(object state);

    /// <summary>Whether the text is complete and nothing may follow it (generation stops there).</summary>
    internal abstract bool IsFinal(object state);

    /// <summary>A key equal for states that allow the same tokens, so the allowed sets can be cached; null: do not cache this state.</summary>
    internal virtual object? CacheKey(object state) => state;

    /// <summary>Sets the bit of every token whose bytes lead from <paramref name="state"/> to a state some valid output continues from.</summary>
    internal virtual void AddAllowed(object state, TokenTrie trie, ulong[] allowed) => trie.AddAllowed(new Stepper(this), state, allowed);

    private readonly struct Stepper(OutputConstraint constraint) : TokenTrie.IStepper<object>
    {
        public bool TryStep(object state, byte b, out object next) => (next = constraint.Step(state, b)!) is not null;
    }

    /// <summary>The allowed-token sets computed so far for one vocabulary, shared by every generation that uses this constraint.</summary>
    internal AllowedTokenCache AllowedCache(TokenTrie trie) => _allowed.GetValue(trie, t => new AllowedTokenCache(t.VocabularySize));

    /// <summary>
    /// Text matching a regular expression as a whole: <c>.</c>, classes <c>[...]</c> and <c>[^...]</c> over Unicode code
    /// points, <c>\d \w \s</c> (ASCII) and their negations, <c>\xHH \uHHHH</c>, <c>* + ? {m,n}</c>, <c>|</c>, groups.
    /// </summary>
    /// <param name="pattern">The regular expression; the whole output must match it.</param>
    /// <param name="limits">Size limits; null: the defaults (<see cref="ConstraintLimits.DefaultMaxAutomatonSize"/>, <see cref="ConstraintLimits.DefaultMaxStates"/>).</param>
    /// <exception cref="ArgumentException">The pattern is invalid or uses unsupported syntax (backreferences, lookaround, anchors inside).</exception>
    /// <exception cref="ConstraintTooLargeException">The pattern expands past <see cref="ConstraintLimits.MaxAutomatonSize"/> (nested repetition counts multiply).</exception>
    public static OutputConstraint Regex(string pattern, ConstraintLimits? limits = null) => new RegexConstraint(pattern, limits);

    /// <summary>Exactly one of the given strings.</summary>
    /// <exception cref="ArgumentException">The list is empty or holds an empty string.</exception>
    /// <exception cref="ConstraintTooLargeException">The strings together pass <see cref="ConstraintLimits.DefaultMaxAutomatonSize"/> automaton states.</exception>
    public static OutputConstraint Choice(params IReadOnlyList<string> choices) => Choice(choices, null);

    /// <summary>Exactly one of the given strings, within <paramref name="limits"/>.</summary>
    /// <param name="choices">The strings the output may be.</param>
    /// <param name="limits">Size limits; null: the defaults.</param>
    /// <exception cref="ArgumentException">The list is empty or holds an empty string.</exception>
    /// <exception cref="ConstraintTooLargeException">The strings together pass <see cref="ConstraintLimits.MaxAutomatonSize"/> automaton states.</exception>
    public static OutputConstraint Choice(IReadOnlyList<string> choices, ConstraintLimits? limits)
    {
        ArgumentNullException.ThrowIfNull(choices);
        if (choices.Count == 0 || choices.Any(string.IsNullOrEmpty)) throw new InvalidOptionException(nameof(choices), "Choice needs at least one non-empty string.");
        return new RegexConstraint(string.Join('|', choices.Select(RegexConstraint.Escape)), limits, nameof(choices), $"The choice list ({choices.Count:N0} strings)");
    }

    /// <summary>
    /// JSON text that validates against a (non-recursive) JSON schema, laid out canonically (see the supported
    /// keywords on <see cref="JsonSchemaRegex"/>): compiled to a regular expression over the JSON text.
    /// </summary>
    /// <exception cref="NotSupportedException">The schema uses a keyword, format or reference OnnxLM cannot compile; the message names it.</exception>
    /// <param name="schema">The JSON schema.</param>
    /// <param name="limits">Size limits; null: the defaults. The regular expression the schema compiles to counts against <see cref="ConstraintLimits.MaxAutomatonSize"/> in characters as well as in automaton states.</param>
    /// <exception cref="ArgumentException">The schema is invalid: a keyword's value has the wrong kind (the message names it).</exception>
    /// <exception cref="ConstraintTooLargeException">The schema expands past <see cref="ConstraintLimits.MaxAutomatonSize"/> (nested <c>maxItems</c>, <c>maxLength</c> and repetitions in patterns multiply).</exception>
    public static OutputConstraint JsonSchema(System.Text.Json.JsonElement schema, ConstraintLimits? limits = null)
    {
        limits ??= ConstraintLimits.Default;
        return new RegexConstraint(JsonSchemaRegex.Compile(schema, limits.MaxAutomatonSize), limits, nameof(schema), "The JSON schema");
    }

    /// <summary>
    /// A valid JSON document (RFC 8259): a JSON object by default (OpenAI's <c>json_object</c> mode), any JSON value with
    /// <paramref name="objectOnly"/> false. Whitespace between tokens is limited to short runs so a model cannot pad forever.
    /// </summary>
    public static OutputConstraint Json(bool objectOnly = true, int maxDepth = 32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDepth, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxDepth, JsonConstraint.MaxSupportedDepth);
        // The defaults are shared, so their cached allowed sets serve every request.
        return (objectOnly, maxDepth) switch
        {
            (true, 32) => DefaultJsonObject,
            (false, 32) => DefaultJsonValue,
            _ => new JsonConstraint(objectOnly, maxDepth),
        };
    }

    private static readonly JsonConstraint DefaultJsonObject = new(true, 32);
    private static readonly JsonConstraint DefaultJsonValue = new(false, 32);

    /// <summary>
    /// Text in the language of a context-free grammar written in llama.cpp's GBNF: rules <c>name ::= ...</c> with
    /// sequences, <c>|</c> alternatives, <c>"literals"</c>, character classes <c>[a-z]</c> / <c>[^...]</c>, <c>.</c>,
    /// groups, <c>* + ?</c> and <c>{m}</c> / <c>{m,}</c> / <c>{m,n}</c>, and <c>#</c> comments. The output must be a
    /// whole <paramref name="root"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The grammar does not parse, names an undefined rule, has no root rule,
    /// is left-recursive or has a rule that can never finish; the message names the rule and place.</exception>
    /// <exception cref="ConstraintTooLargeException">The rules, with their repetitions written out, pass <see cref="ConstraintLimits.MaxAutomatonSize"/> elements.</exception>
    /// <param name="grammar">The GBNF text.</param>
    /// <param name="root">The rule the whole output must match.</param>
    /// <param name="limits">Size limits; null: the defaults.</param>
    public static OutputConstraint Grammar(string grammar, string root = "root", ConstraintLimits? limits = null) => new GrammarConstraint(grammar, root, limits);
}
