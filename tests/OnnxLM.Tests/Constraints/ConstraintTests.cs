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
        Assert.Throws<ArgumentException>(() => OutputConstraint.Regex(pattern));
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
        var ex = Assert.Throws<ArgumentException>(() => OutputConstraint.JsonSchema(JsonDocument.Parse(schema).RootElement));
        Assert.Contains(named, ex.Message);
    }
}
