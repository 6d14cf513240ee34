using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using OnnxLM.Constraints;

namespace OnnxLM.Tests;

/// <summary>
/// Random JSON schemas (nested objects with required and optional properties, arrays with bounds, enums with
/// non-ASCII values, constants, patterns, formats, anyOf, $ref) × sampled generations on kjv-tiny: every completed
/// output validates against its schema by JsonSchema.Net, a maintained validator independent of OnnxLM.
/// </summary>
public sealed class JsonSchemaPropertyTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));

    public void Dispose() => _model.Dispose();

    [Fact]
    public async Task CompletedOutputsOfRandomSchemasValidate()
    {
        var validated = 0;
        for (var s = 0; s < 16; s++)
        {
            var random = new Random(s);
            var schemaNode = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject(), ["required"] = new JsonArray() };
            var defs = new JsonObject { ["flag"] = new JsonObject { ["type"] = "boolean" } };
            for (var p = random.Next(1, 4); p > 0; p--)
            {
                var name = $"p{p}";
                ((JsonObject)schemaNode["properties"]!)[name] = RandomSchema(random, 0);
                if (random.Next(3) > 0) ((JsonArray)schemaNode["required"]!).Add(name);
            }

            schemaNode["$defs"] = defs;
            var text = schemaNode.ToJsonString();
            var constraint = OutputConstraint.JsonSchema(JsonDocument.Parse(text).RootElement);
            for (var seed = 0; seed < 3; seed++)
            {
                var result = await _model.GenerateAsync("And God said", new GenerationOptions { Constraint = constraint, Temperature = 1, Seed = seed, MaxNewTokens = 120 });
                if (result.FinishReason != FinishReason.Stop) continue;
                AssertValid(text, result.Text, $"schema {s} seed {seed}");
                validated++;
            }
        }

        Assert.True(validated >= 16, $"only {validated} of 48 sampled outputs completed within 120 tokens");
    }

    /// <summary>Asserts that <paramref name="output"/> parses and validates against the schema (formats checked), naming each error.</summary>
    internal static void AssertValid(string schema, string output, string what)
    {
        using var doc = JsonDocument.Parse(output);
        var evaluation = JsonSchema.FromText(schema).Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List, RequireFormatValidation = true });
        Assert.True(evaluation.IsValid, $"{what}: {output} does not validate against {schema}: " +
            string.Join("; ", evaluation.Details?.Where(d => d.Errors is not null).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation} {e.Value}")) ?? []));
    }

    private static JsonNode RandomSchema(Random random, int depth)
    {
        switch (random.Next(depth >= 2 ? 9 : 12))
        {
            case 0: return new JsonObject { ["type"] = "integer" };
            case 1: return new JsonObject { ["type"] = "number" };
            case 2: return new JsonObject { ["$ref"] = "#/$defs/flag" };
            case 3: return new JsonObject { ["type"] = "null" };
            case 4: return new JsonObject { ["type"] = "string", ["maxLength"] = random.Next(1, 8) };
            case 5: return new JsonObject { ["enum"] = new JsonArray("día", "noche", 7, null, "日本") };
            case 6: return new JsonObject { ["type"] = "string", ["format"] = random.Next(2) == 0 ? "date" : "time" };
            case 7: return new JsonObject { ["type"] = "string", ["pattern"] = "[a-zé]{1,4}" };
            case 8: return new JsonObject { ["const"] = random.Next(2) == 0 ? "Ω" : 42 };
            case 9:
                return new JsonObject
                {
                    ["type"] = "array", ["items"] = RandomSchema(random, depth + 1),
                    ["minItems"] = random.Next(0, 2), ["maxItems"] = random.Next(2, 4),
                };
            case 10: return new JsonObject { ["anyOf"] = new JsonArray(RandomSchema(random, depth + 1), RandomSchema(random, depth + 1)) };
            default:
            {
                var inner = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["a"] = RandomSchema(random, depth + 1), ["b"] = RandomSchema(random, depth + 1) } };
                inner["required"] = new JsonArray(random.Next(2) == 0 ? "a" : "b");
                inner["additionalProperties"] = false;
                return inner;
            }
        }
    }
}
