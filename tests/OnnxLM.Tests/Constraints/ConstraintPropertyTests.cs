using System.Text;
using System.Text.Json;
using OnnxLM.Constraints;
using OnnxLM.Sampling;

namespace OnnxLM.Tests;

/// <summary>
/// Random regular languages (ASCII, Latin, Greek, CJK and astral characters, so tokens that hold part of a character
/// are needed) sampled through the regex and the grammar engines on kjv-tiny: every complete output is in the language
/// by the test's own backtracking matcher, greedy output is the same token for token through both engines, and a
/// brute-force search over the vocabulary's bytes picks the same tokens as the constrained generation.
/// </summary>
public sealed class ConstraintPropertyTests : IDisposable
{
    private const int Patterns = 24;
    private readonly LanguageModel _model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));

    public void Dispose() => _model.Dispose();

    [Fact]
    public async Task SampledOutputsOfRandomPatternsAreInTheLanguage()
    {
        var completed = 0;
        var nonAscii = 0;
        for (var p = 0; p < Patterns; p++)
        {
            var pattern = RandomPattern.Generate(new Random(p));
            foreach (var (engine, constraint) in new[] { ("regex", OutputConstraint.Regex(pattern.ToRegex())), ("grammar", OutputConstraint.Grammar(pattern.ToGbnf())) })
            {
                for (var seed = 0; seed < 2; seed++)
                {
                    var result = await _model.GenerateAsync("And God said", new GenerationOptions { Constraint = constraint, Temperature = 1, Seed = seed, MaxNewTokens = 24 });
                    if (result.FinishReason == FinishReason.Stop)
                    {
                        completed++;
                        if (result.Text.Any(c => c >= 0x80)) nonAscii++; // written with tokens that each hold part of a character
                        Assert.True(pattern.Matches(result.Text), $"pattern {p} ({engine}) {pattern}: {JsonSerializer.Serialize(result.Text)} is not in the language");
                    }
                    else
                    {
                        Assert.Equal(FinishReason.Length, result.FinishReason);
                    }
                }
            }
        }

        Assert.True(completed >= Patterns, $"only {completed} of {Patterns * 4} sampled outputs completed");
        Assert.True(nonAscii >= 4, $"only {nonAscii} completed outputs had non-ASCII characters");
    }

    [Fact]
    public async Task RegexAndGrammarEnginesPickTheSameGreedyTokens()
    {
        for (var p = 0; p < Patterns; p++)
        {
            var pattern = RandomPattern.Generate(new Random(100 + p));
            var regex = await _model.GenerateAsync("In the beginning", new GenerationOptions { Constraint = OutputConstraint.Regex(pattern.ToRegex()), MaxNewTokens = 16 });
            var grammar = await _model.GenerateAsync("In the beginning", new GenerationOptions { Constraint = OutputConstraint.Grammar(pattern.ToGbnf()), MaxNewTokens = 16 });
            Assert.True(regex.TokenIds.SequenceEqual(grammar.TokenIds), $"pattern {p} {pattern}: regex [{string.Join(",", regex.TokenIds)}] vs grammar [{string.Join(",", grammar.TokenIds)}]");
            if (regex.FinishReason == FinishReason.Stop) Assert.True(pattern.Matches(regex.Text), $"pattern {p} {pattern}: {regex.Text}");
        }
    }

    [Fact]
    public void AVocabularyThatCannotSpellTheNextCharacterIsAClearError()
    {
        // BERT's WordPiece vocabulary has no byte tokens and no emoji: nothing can start "😀".
        var bert = TextTokenizer.FromFile(TokenizerFamilies.Committed("bert", "tokenizer.json"));
        var processor = new ConstraintProcessor(OutputConstraint.Regex("😀|🙂"), bert, [0], bert.VocabularySize);
        var context = new SamplingContext(new Random(0), 0);
        context.SetTokens([], 0);
        var ex = Assert.Throws<InvalidOperationException>(() => processor.Process(new float[bert.VocabularySize], context));
        Assert.Contains("cannot write any of the characters", ex.Message);
    }

    public static TheoryData<string> ChoiceSets => new()
    {
        "día|über|naïve café",
        "日本|日曜日|Ω",
        "😀 smile|λx",
    };

    [Theory]
    [MemberData(nameof(ChoiceSets))]
    public async Task GreedyEqualsABruteForceSearchOverTokenBytes(string choices)
    {
        await BruteForce.AssertGreedyChoiceAsync(_model, "And God said", choices.Split('|'));
    }
}

/// <summary>The same properties on a 32,000-token SentencePiece-style vocabulary with byte fallback (random weights).</summary>
public sealed class LargeVocabularyConstraintTests
{
    private const string Model = "tiny-llama-fp16";

    [SharedModelFact(Model)]
    public async Task ChoicesAndRegexesHoldOnA32kVocabulary()
    {
        using var model = LanguageModel.Load(TestPaths.SharedModel(Model));
        Assert.True(model.Tokenizer.VocabularySize >= 32_000);
        await BruteForce.AssertGreedyChoiceAsync(model, "Hello", ["día", "日本語", "naïve"]);
        for (var p = 0; p < 8; p++)
        {
            var pattern = RandomPattern.Generate(new Random(200 + p));
            for (var seed = 0; seed < 2; seed++)
            {
                var result = await model.GenerateAsync("Hello", new GenerationOptions { Constraint = OutputConstraint.Regex(pattern.ToRegex()), Temperature = 1, Seed = seed, MaxNewTokens = 24 });
                if (result.FinishReason == FinishReason.Stop) Assert.True(pattern.Matches(result.Text), $"pattern {p} {pattern}: {JsonSerializer.Serialize(result.Text)}");
            }
        }
    }

    [SharedModelFact(Model)]
    public async Task JsonOutputsAreValidPrefixesAndCompleteOnesParse()
    {
        using var model = LanguageModel.Load(TestPaths.SharedModel(Model));
        for (var seed = 0; seed < 6; seed++)
        {
            var result = await model.GenerateAsync("Hello", new GenerationOptions { Constraint = OutputConstraint.Json(objectOnly: false), Temperature = 1, Seed = seed, MaxNewTokens = 40 });
            var bytes = result.TokenIds.Where(id => !model.Tokenizer.IsSpecialToken(id)).SelectMany(id => ReferenceTokenBytes.Of(model.Tokenizer, id)!).ToArray();
            if (result.FinishReason == FinishReason.Stop)
            {
                using var _ = JsonDocument.Parse(bytes);
            }
            else
            {
                Assert.True(BruteForce.IsJsonPrefix(bytes), $"seed {seed}: {Encoding.UTF8.GetString(bytes)} is not a JSON prefix");
            }
        }
    }

    [SharedModelFact(Model)]
    public async Task SchemaOutputsValidateOnA32kVocabulary()
    {
        const string Schema = """
            {"type": "object", "additionalProperties": false, "required": ["when", "ok", "tag"],
             "properties": {"when": {"type": "string", "format": "date"}, "ok": {"type": "boolean"}, "tag": {"enum": ["día", "日本"]}}}
            """;
        using var model = LanguageModel.Load(TestPaths.SharedModel(Model));
        var constraint = OutputConstraint.JsonSchema(JsonDocument.Parse(Schema).RootElement);
        for (var seed = 0; seed < 4; seed++)
        {
            var result = await model.GenerateAsync("Hello", new GenerationOptions { Constraint = constraint, Temperature = 1, Seed = seed, MaxNewTokens = 120 });
            Assert.Equal(FinishReason.Stop, result.FinishReason);
            JsonSchemaPropertyTests.AssertValid(Schema, result.Text, $"seed {seed}");
        }
    }
}

/// <summary>References computed by the test alone: a token is allowed when the text's bytes plus its bytes start some valid output.</summary>
internal static class BruteForce
{
    /// <summary>Greedy generation under a choice of strings equals picking, at each step, the likeliest token that keeps the bytes a prefix of a choice.</summary>
    public static async Task AssertGreedyChoiceAsync(LanguageModel model, string prompt, string[] choices)
    {
        var tokenizer = model.Tokenizer;
        var targets = choices.Select(Encoding.UTF8.GetBytes).ToArray();
        var eos = model.Info.EosTokenIds[0];
        var ids = tokenizer.EncodeForModel(prompt, null);
        var bytes = new List<byte>();
        var expected = new List<int>();
        var tokenBytes = Enumerable.Range(0, Math.Min(tokenizer.VocabularySize, model.Info.VocabularySize)).Select(id => ReferenceTokenBytes.Of(tokenizer, id)).ToArray();
        using (var session = model.CreateSession())
        {
            session.Append(ids);
            for (var step = 0; step < 20; step++)
            {
                var logits = session.NextTokenLogits.ToArray();
                var best = -1;
                for (var id = 0; id < logits.Length; id++)
                {
                    bool ok;
                    if (id == eos) ok = targets.Any(t => t.AsSpan().SequenceEqual(bytes.ToArray()));
                    else ok = id < tokenBytes.Length && tokenBytes[id] is { } b && targets.Any(t => t.AsSpan().StartsWith([.. bytes, .. b]));
                    if (ok && (best < 0 || logits[id] > logits[best])) best = id;
                }

                Assert.True(best >= 0, $"nothing allowed after {Encoding.UTF8.GetString(bytes.ToArray())}");
                expected.Add(best);
                if (best == eos) break;
                bytes.AddRange(tokenBytes[best]!);
                session.Append(best);
            }
        }

        var constrained = await model.GenerateAsync(ids, new GenerationOptions { Constraint = OutputConstraint.Choice(choices), MaxNewTokens = 20, StopTokenIds = [eos] });
        Assert.Equal(expected, constrained.TokenIds);
        Assert.Equal(FinishReason.Stop, constrained.FinishReason);
        Assert.Contains(constrained.Text, choices);
    }

    /// <summary>Whether the bytes start some JSON document: System.Text.Json reads them as an unfinished block without an error.</summary>
    public static bool IsJsonPrefix(byte[] bytes)
    {
        try
        {
            var reader = new Utf8JsonReader(bytes, isFinalBlock: false, state: default);
            while (reader.Read()) { }
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
