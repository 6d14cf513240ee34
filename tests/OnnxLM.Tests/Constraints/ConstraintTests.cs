using System.Text.Json;
using System.Text.RegularExpressions;
using OnnxLM.Constraints;

namespace OnnxLM.Tests;

/// <summary>Constrained generation on kjv-tiny: every output has the shape, checked by independent parsers, and greedy equals a brute-force search.</summary>
public sealed class ConstraintTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));

    public void Dispose() => _model.Dispose();

    [Theory]
    [InlineData("[0-9]{3}-[0-9]{2}")]
    [InlineData("(yes|no|maybe)")]
    [InlineData("[A-Z][a-z]+ [0-9]+:[0-9]+")]
    [InlineData("a(b|c)*d?")]
    [InlineData("[^,.]{2,5}\\.")]
    public async Task SampledOutputsMatchTheRegex(string pattern)
    {
        var check = new Regex($"^(?:{pattern})\\z"); // \z: .NET's $ also matches before a final newline
        for (var seed = 0; seed < 8; seed++)
        {
            var result = await _model.GenerateAsync("And God said", new GenerationOptions { Constraint = OutputConstraint.Regex(pattern), Temperature = 1, Seed = seed, MaxNewTokens = 40 });
            if (result.FinishReason == FinishReason.Stop) Assert.Matches(check, result.Text);
            else Assert.Equal(FinishReason.Length, result.FinishReason); // ran out of tokens mid-match: reported as Length, not success
        }
    }

    [Fact]
    public async Task AChoiceIsOneOfTheStrings()
    {
        string[] choices = ["light", "darkness", "the waters"];
        for (var seed = 0; seed < 6; seed++)
        {
            var result = await _model.GenerateAsync("And God said, Let there be", new GenerationOptions { Constraint = OutputConstraint.Choice(choices), Temperature = 1, Seed = seed, MaxNewTokens = 20 });
            Assert.Equal(FinishReason.Stop, result.FinishReason);
            Assert.Contains(result.Text, choices);
        }
    }

    [Fact]
    public async Task JsonOutputsParse()
    {
        var complete = 0;
        for (var seed = 0; seed < 12; seed++)
        {
            var result = await _model.GenerateAsync("And God said", new GenerationOptions { Constraint = OutputConstraint.Json(), Temperature = 1, Seed = seed, MaxNewTokens = 60 });
            if (result.FinishReason != FinishReason.Stop) continue;
            using var doc = JsonDocument.Parse(result.Text);
            Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
            complete++;
        }

        Assert.True(complete > 0, "no sampled output completed in 60 tokens");
    }

    [Fact]
    public async Task GreedyEqualsABruteForceSearchOverTheVocabulary()
    {
        // [0-9]{3}-[0-9]{2}: its prefixes are exactly the strings these two patterns match.
        var prefix = new Regex("^(?:[0-9]{0,3}|[0-9]{3}-[0-9]{0,2})\\z");
        var whole = new Regex("^[0-9]{3}-[0-9]{2}\\z");
        var tokenizer = _model.Tokenizer;
        var eos = _model.Info.EosTokenIds[0];
        var prompt = tokenizer.EncodeForModel("And God said", null);
        using var session = _model.CreateSession();
        session.Append(prompt);
        var text = "";
        var expected = new List<int>();
        while (true)
        {
            var logits = session.NextTokenLogits.ToArray();
            var order = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i);
            var next = order.FirstOrDefault(id => id == eos ? whole.IsMatch(text)
                : !tokenizer.IsSpecialToken(id) && tokenizer.TokenText(id) is { Length: > 0 } t && !t.Contains('\uFFFD') && prefix.IsMatch(text + t));
            Assert.True(next != 0 || text.Length == 0, $"nothing allowed after {System.Text.Json.JsonSerializer.Serialize(text)} ({string.Join(",", expected)})");
            expected.Add(next);
            if (next == eos) break;
            text += tokenizer.TokenText(next);
            session.Append(next);
        }

        var constrained = await _model.GenerateAsync(prompt, new GenerationOptions { Constraint = OutputConstraint.Regex("[0-9]{3}-[0-9]{2}"), MaxNewTokens = 20 });
        Assert.Equal(expected, constrained.TokenIds);
        Assert.Matches(whole, constrained.Text);
    }

    [Theory]
    [InlineData("(a")]
    [InlineData("a{2")]
    [InlineData("^abc")]
    [InlineData("(?=a)b")]
    [InlineData("\\1")]
    [InlineData("*a")]
    public void UnsupportedOrInvalidPatternsAreArgumentErrors(string pattern) =>
        Assert.Throws<InvalidOptionException>(() => OutputConstraint.Regex(pattern));
}

/// <summary>JSON-schema constrained generation: every completed output parses and has the schema's shape.</summary>
public sealed class JsonSchemaConstraintTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));

    public void Dispose() => _model.Dispose();

    private const string Schema = """
        {
          "type": "object",
          "properties": {
            "book": {"type": "string", "enum": ["Genesis", "Exodus", "Psalms"]},
            "chapter": {"type": "integer"},
            "verse": {"$ref": "#/$defs/verse"},
            "canonical": {"type": "boolean"},
            "read": {"type": "string", "format": "date"},
            "note": {"type": ["string", "null"], "maxLength": 12}
          },
          "required": ["book", "chapter", "verse", "canonical", "read"],
          "$defs": {"verse": {"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 1, "maxItems": 3}}
        }
        """;

    [Fact]
    public async Task CompletedOutputsValidateAgainstTheSchema()
    {
        var constraint = OutputConstraint.JsonSchema(JsonDocument.Parse(Schema).RootElement);
        var complete = 0;
        for (var seed = 0; seed < 10; seed++)
        {
            var result = await _model.GenerateAsync("And God said", new GenerationOptions { Constraint = constraint, Temperature = seed == 0 ? 0 : 1, Seed = seed, MaxNewTokens = 160 });
            if (result.FinishReason != FinishReason.Stop) continue;
            complete++;
            using var doc = JsonDocument.Parse(result.Text);
            var o = doc.RootElement;
            Assert.Contains(o.GetProperty("book").GetString(), new[] { "Genesis", "Exodus", "Psalms" });
            Assert.Equal(JsonValueKind.Number, o.GetProperty("chapter").ValueKind);
            Assert.True(o.GetProperty("chapter").TryGetInt64(out _));
            Assert.InRange(o.GetProperty("verse").GetArrayLength(), 1, 3);
            Assert.All(o.GetProperty("verse").EnumerateArray(), v => Assert.True(v.GetString()!.Length <= 10));
            Assert.True(o.GetProperty("canonical").ValueKind is JsonValueKind.True or JsonValueKind.False);
            Assert.Matches(@"^[0-9]{4}-[0-9]{2}-[0-9]{2}\z", o.GetProperty("read").GetString());
            if (o.TryGetProperty("note", out var note)) Assert.True(note.ValueKind == JsonValueKind.Null || note.GetString()!.Length <= 12);
            Assert.Equal(["book", "chapter", "verse", "canonical", "read", .. o.TryGetProperty("note", out _) ? new[] { "note" } : []], o.EnumerateObject().Select(p => p.Name));
        }

        Assert.True(complete > 0, "no output completed within 160 tokens");
    }

    [Theory]
    [InlineData("{\"type\": \"integer\", \"minimum\": 3}", "minimum")]
    [InlineData("{\"type\": \"object\", \"patternProperties\": {}}", "patternProperties")]
    [InlineData("{\"type\": \"string\", \"format\": \"ipv6\"}", "ipv6")]
    [InlineData("{\"$ref\": \"#\"}", "recursively")]
    [InlineData("{\"type\": \"object\", \"properties\": {\"next\": {\"$ref\": \"#/$defs/missing\"}}}", "points nowhere")]
    public void UnsupportedSchemasNameWhatIsUnsupported(string schema, string named)
    {
        var ex = Assert.Throws<NotSupportedException>(() => OutputConstraint.JsonSchema(JsonDocument.Parse(schema).RootElement));
        Assert.Contains(named, ex.Message);
    }

    [Theory]
    [InlineData("{\"type\": \"string\", \"minLength\": 5, \"maxLength\": 2}", "minLength 5 is above its maxLength 2")]
    [InlineData("{\"type\": \"array\", \"minItems\": 3, \"maxItems\": 1}", "minItems 3 is above its maxItems 1")]
    [InlineData("{\"enum\": []}", "'enum' must be a non-empty list")]
    [InlineData("{\"type\": \"object\", \"required\": \"name\"}", "'required' must be a list of property names")]
    [InlineData("{\"type\": \"string\", \"maxLength\": -1}", "'maxLength' must be a non-negative integer")]
    public void UnsatisfiableOrInvalidSchemasAreArgumentErrors(string schema, string named)
    {
        var ex = Assert.Throws<InvalidOptionException>(() => OutputConstraint.JsonSchema(JsonDocument.Parse(schema).RootElement));
        Assert.Contains(named, ex.Message);
    }
}

/// <summary>
/// Hostile constraints (nested repetition counts whose product is huge) are refused quickly with a
/// <see cref="ConstraintTooLargeException"/> naming the limit, through every factory, while realistic ones still compile
/// and match exactly what .NET's regex engine matches.
/// </summary>
/// <remarks>Timed: they run alone (<see cref="TimedCollection"/>), so a busy test run does not stretch their bounds.</remarks>
[Collection(TimedCollection.Name)]
public sealed class ConstraintLimitTests
{
    private const string Nested = "((x{1000}){1000}){1000}";

    /// <summary>Runs <paramref name="build"/>, which must refuse the constraint within <paramref name="seconds"/> (default one).</summary>
    private static ConstraintTooLargeException RefusedQuickly(Func<OutputConstraint> build, double seconds = 1)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<ConstraintTooLargeException>(() => build());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(seconds), $"refused after {clock.Elapsed.TotalMilliseconds:F0} ms");
        return e;
    }

    [Fact]
    public void NestedRepetitionsAreRefusedBeforeTheyAreBuilt()
    {
        var e = RefusedQuickly(() => OutputConstraint.Regex(Nested));
        Assert.Equal("MaxAutomatonSize", e.LimitName);
        Assert.Equal(ConstraintLimits.DefaultMaxAutomatonSize, e.Limit);
        Assert.Equal("pattern", e.ParamName);
        Assert.Contains("ConstraintLimits.MaxAutomatonSize = 4,000,000", e.Message);
        Assert.Contains(Nested, e.Message);
    }

    [Fact]
    public void NestedArraysInAJsonSchemaAreRefused()
    {
        // maxItems 1000, three arrays deep: the same product as the regex, reached through the schema.
        var schema = JsonDocument.Parse("""
            {"type": "array", "maxItems": 1000, "items": {"type": "array", "maxItems": 1000, "items": {"type": "array", "maxItems": 1000, "items": {"const": 1}}}}
            """).RootElement;
        var e = RefusedQuickly(() => OutputConstraint.JsonSchema(schema));
        Assert.Equal(("MaxAutomatonSize", "schema"), (e.LimitName, e.ParamName));
        Assert.StartsWith("The JSON schema", e.Message);

        var inPattern = JsonDocument.Parse($$"""{"type": "string", "pattern": "{{Nested}}"}""").RootElement;
        Assert.Equal("schema", RefusedQuickly(() => OutputConstraint.JsonSchema(inPattern)).ParamName);
    }

    [Fact]
    public void ReferencesUsedManyTimesInAJsonSchemaAreRefusedByTheTextBudget()
    {
        // Each level uses the one below four times: 4^12 copies of the leaf if written out.
        var defs = string.Join(", ", Enumerable.Range(0, 12).Select(i =>
            $$"""
            "d{{i}}": {"type": "object", "properties": {"a": {"$ref": "#/$defs/d{{i + 1}}"}, "b": {"$ref": "#/$defs/d{{i + 1}}"}, "c": {"$ref": "#/$defs/d{{i + 1}}"}, "e": {"$ref": "#/$defs/d{{i + 1}}"} } }
            """));
        var schema = JsonDocument.Parse($$"""{"$ref": "#/$defs/d0", "$defs": { {{defs}}, "d12": {"type": "integer"} } }""").RootElement;
        var e = RefusedQuickly(() => OutputConstraint.JsonSchema(schema));
        Assert.Contains("regular expression longer than 4,000,000 characters", e.Message);
    }

    [Fact]
    public void ManyOptionalPropertiesCompileAndKeepTheirOrder()
    {
        // Each optional property used to double the regex text (2^40 here); it now grows with their square.
        var names = Enumerable.Range(0, 40).Select(i => $"p{i}").ToList();
        var properties = string.Join(", ", names.Select(n => $"\"{n}\": {{\"type\": \"integer\"}}"));
        var schema = JsonDocument.Parse($$"""{"type": "object", "properties": { {{properties}} } }""").RootElement;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var constraint = OutputConstraint.JsonSchema(schema);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"compiled in {clock.Elapsed.TotalMilliseconds:F0} ms");
        Assert.True(GrammarConstraintTests.Accepts(constraint, "{}"));
        Assert.True(GrammarConstraintTests.Accepts(constraint, """{"p3": 1, "p17": 2, "p39": 3}"""));
        Assert.True(GrammarConstraintTests.Accepts(constraint, """{"p39": 0}"""));
        Assert.False(GrammarConstraintTests.Accepts(constraint, """{"p17": 2, "p3": 1}""")); // schema order only
        Assert.False(GrammarConstraintTests.Accepts(constraint, """{, "p3": 1}"""));
        Assert.False(GrammarConstraintTests.Accepts(constraint, """{"p3": 1,}"""));
    }

    [Fact]
    public void GrammarsAreBoundedWhenWrittenOutAndWhileGenerating()
    {
        // Rules reference each other, so nesting the counts stays small: this grammar compiles (about 3,000 elements).
        var nested = OutputConstraint.Grammar("""root ::= (("x"{1000}){1000}){1000}""");
        Assert.True(GrammarConstraintTests.Accepts(nested, new string('x', 1000)) is false);

        // Writing a count out four thousand and one times does not. It is refused once the limit's worth of elements is
        // written (about 4 million), which is real work: the issue allows the automaton cases 10 s; this asks for 5.
        var wide = "root ::= " + string.Concat(Enumerable.Repeat("\"ab\"{1000} ", 4001));
        var e = RefusedQuickly(() => OutputConstraint.Grammar(wide), seconds: 5);
        Assert.Equal(("MaxAutomatonSize", "grammar"), (e.LimitName, e.ParamName));
        Assert.StartsWith("Grammar line 1, column", e.Message);

        // While generating, each 'x' of the nested grammar is a new state; a small MaxStates stops it with the same exception.
        var bounded = OutputConstraint.Grammar("""root ::= (("x"{1000}){1000}){1000}""", limits: new ConstraintLimits { MaxStates = 50 });
        var generating = Assert.Throws<ConstraintTooLargeException>(() => GrammarConstraintTests.Accepts(bounded, new string('x', 100)));
        Assert.Equal(("MaxStates", 50, "grammar"), (generating.LimitName, generating.Limit, generating.ParamName));
    }

    [Fact]
    public void AChoiceListIsBoundedToo()
    {
        var choices = Enumerable.Range(0, 2000).Select(i => $"choice number {i}").ToList();
        Assert.True(GrammarConstraintTests.Accepts(OutputConstraint.Choice(choices), "choice number 1999"));
        var e = RefusedQuickly(() => OutputConstraint.Choice(choices, new ConstraintLimits { MaxAutomatonSize = 10_000 }));
        Assert.Equal(("MaxAutomatonSize", 10_000, "choices"), (e.LimitName, e.Limit, e.ParamName));
    }

    [Fact]
    public void TheLimitsCanBeLoweredAndRaised()
    {
        // About 36,000 NFA states: within the default, over a limit of 10,000.
        const string Medium = "(x{100}){120}";
        Assert.True(GrammarConstraintTests.Accepts(OutputConstraint.Regex(Medium), new string('x', 12_000)));
        var lowered = RefusedQuickly(() => OutputConstraint.Regex(Medium, new ConstraintLimits { MaxAutomatonSize = 10_000 }));
        Assert.Equal(10_000, lowered.Limit);
        Assert.Contains("ConstraintLimits.MaxAutomatonSize = 10,000", lowered.Message);

        // About 4.2 million: refused by default, built when the limit is raised.
        const string Large = "((x{1000}){100}){14}";
        RefusedQuickly(() => OutputConstraint.Regex(Large));
        var raised = OutputConstraint.Regex(Large, new ConstraintLimits { MaxAutomatonSize = 5_000_000 });
        Assert.True(GrammarConstraintTests.Accepts(raised, "") is false);
        Assert.NotNull(raised.Step(raised.Start, (byte)'x'));

        // States built while generating: x{1000} needs one per character read.
        var few = OutputConstraint.Regex("x{1000}", new ConstraintLimits { MaxStates = 50 });
        var e = Assert.Throws<ConstraintTooLargeException>(() => GrammarConstraintTests.Accepts(few, new string('x', 100)));
        Assert.Equal(("MaxStates", 50), (e.LimitName, e.Limit));
        Assert.True(GrammarConstraintTests.Accepts(OutputConstraint.Regex("x{1000}"), new string('x', 1000)));
    }

    [Fact]
    public void LimitsBelowOneAreRefusedNamingTheOption()
    {
        Assert.Equal("MaxAutomatonSize", Assert.Throws<InvalidOptionException>(() => new ConstraintLimits { MaxAutomatonSize = 0 }).ParamName);
        Assert.Equal("MaxStates", Assert.Throws<InvalidOptionException>(() => new ConstraintLimits { MaxStates = -1 }).ParamName);
    }

    [Theory]
    [InlineData("[0-9]{4}-[0-9]{2}-[0-9]{2}", "2026-12-06", "2026-12-6")]
    [InlineData("[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}", "ada@example.org", "ada@example")]
    [InlineData("\\+?[0-9]{1,3}[ -]?\\(?[0-9]{3}\\)?[ -]?[0-9]{3}[ -]?[0-9]{4}", "+1 (555) 123-4567", "+1 555 123-45")]
    [InlineData("x{1,1000}", "xxxxxxxxxx", "")]
    [InlineData("[a-z]{0,1000}", "abc", "abC")]
    [InlineData(".{1,1000}", "any text at all", "two\nlines")]
    [InlineData("(\\w+ ){0,50}\\w+\\.", "In the beginning God created the heaven.", "In the beginning")]
    public void RealisticPatternsCompileAndMatchExactlyAsDotNetDoes(string pattern, string matching, string notMatching)
    {
        var constraint = OutputConstraint.Regex(pattern);
        var reference = new Regex($"^(?:{pattern})\\z");
        foreach (var text in new[] { matching, notMatching, matching + "x", matching[..^1], new string('x', 1000), new string('x', 1001) })
        {
            Assert.Equal(reference.IsMatch(text), GrammarConstraintTests.Accepts(constraint, text));
        }

        Assert.True(GrammarConstraintTests.Accepts(constraint, matching));
        Assert.False(GrammarConstraintTests.Accepts(constraint, notMatching));
    }
}
