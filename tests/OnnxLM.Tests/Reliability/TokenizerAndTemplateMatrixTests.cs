using OnnxLM.Chat;

namespace OnnxLM.Tests;

/// <summary>
/// The bad-input matrix for tokenizer files and chat templates: malformed JSON, wrong types, unknown stages, huge
/// numbers, deep nesting; template syntax errors and runaway templates. Each is its documented typed exception naming
/// the problem, and the tokenizer or template still works on good input afterwards.
/// </summary>
public sealed class TokenizerAndTemplateMatrixTests : IDisposable
{
    private const string Bpe = """{ "type": "BPE", "vocab": { "a": 0, "b": 1, "ab": 2 }, "merges": ["a b"] }""";
    private readonly string _temp = Directory.CreateTempSubdirectory("onnxlm-tokmatrix-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    public static TheoryData<string, string, string> TokenizerFiles => new()
    {
        { "empty file", "", "not valid JSON" },
        { "a JSON string", "\"tokenizer\"", "object" },
        { "no model", "{ \"normalizer\": null }", "model" },
        { "model a number", "{ \"model\": 5 }", "model" },
        { "vocab a list", """{ "model": { "type": "BPE", "vocab": ["a"], "merges": [] } }""", "vocab" },
        { "id far beyond int", """{ "model": { "type": "BPE", "vocab": { "a": 1e40 }, "merges": [] } }""", "vocab" },
        { "negative id", """{ "model": { "type": "BPE", "vocab": { "a": -4 }, "merges": [] } }""", "vocab" },
        { "huge id", """{ "model": { "type": "BPE", "vocab": { "a": 2000000000 }, "merges": [] } }""", "vocab" },
        { "merges an object", """{ "model": { "type": "BPE", "vocab": { "a": 0 }, "merges": { "a": 1 } } }""", "merges" },
        { "merge of one symbol", """{ "model": { "type": "BPE", "vocab": { "a": 0 }, "merges": ["a"] } }""", "merges[0]" },
        { "unknown decoder", $$"""{ "model": {{Bpe}}, "decoder": { "type": "Hieroglyphs" } }""", "Hieroglyphs" },
        { "unknown post-processor", $$"""{ "model": {{Bpe}}, "post_processor": { "type": "Glitter" } }""", "Glitter" },
        { "unknown pre-tokenizer", $$"""{ "model": {{Bpe}}, "pre_tokenizer": { "type": "Confetti" } }""", "Confetti" },
        { "added token without content", $$"""{ "model": {{Bpe}}, "added_tokens": [ { "id": 3, "special": true } ] }""", "added_tokens" },
        { "added token content a number", $$"""{ "model": {{Bpe}}, "added_tokens": [ { "id": 3, "content": 7, "special": true } ] }""", "added_tokens[0]" },
        { "added token id a string", $$"""{ "model": {{Bpe}}, "added_tokens": [ { "id": "three", "content": "<s>", "special": true } ] }""", "added_tokens[0]" },
        { "added token special a string", $$"""{ "model": {{Bpe}}, "added_tokens": [ { "id": 3, "content": "<s>", "special": "yes" } ] }""", "special" },
        { "template post-processor naming an unknown token", $$"""{ "model": {{Bpe}}, "post_processor": { "type": "TemplateProcessing", "single": [ { "SpecialToken": { "id": "<zz>", "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } } ], "pair": [], "special_tokens": {} } }""", "<zz>" },
        { "nesting 10,000 deep", new string('[', 10_000) + new string(']', 10_000), "JSON" },
    };

    [Theory]
    [MemberData(nameof(TokenizerFiles))]
    public void MalformedTokenizerFilesAreModelFormatErrors(string name, string json, string named)
    {
        var file = Path.Combine(_temp, "tokenizer.json");
        File.WriteAllText(file, json);
        var e = Assert.Throws<ModelFormatException>(() => TextTokenizer.FromFile(file));
        Assert.True(e.Message.Contains(named, StringComparison.OrdinalIgnoreCase), $"{name}: '{e.Message}' does not name '{named}'");
        Assert.Equal(file, e.Path);
    }

    public static TheoryData<string, string, Type> Templates => new()
    {
        { "unclosed tag", "{% for m in messages %}{{ m.content }}", typeof(TemplateSyntaxException) },
        { "unclosed expression", "{{ messages[0].content ", typeof(TemplateSyntaxException) },
        { "unknown tag", "{% frobnicate %}", typeof(TemplateSyntaxException) },
        { "bad operator", "{{ 1 +* 2 }}", typeof(TemplateSyntaxException) },
        { "unknown filter", "{{ messages | sparkle }}", typeof(TemplateException) },
        { "runaway loop", "{% for i in range(1000000000) %}{% for j in range(1000000000) %}x{% endfor %}{% endfor %}", typeof(TemplateLimitExceededException) },
        { "unbounded recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", typeof(TemplateLimitExceededException) },
        { "huge output", "{{ 'x' * 1000000000 }}", typeof(TemplateLimitExceededException) },
        { "raise_exception", "{{ raise_exception('Only user and assistant roles are supported!') }}", typeof(TemplateRaisedException) },
        { "attribute of undefined called", "{{ nothing.here() }}", typeof(TemplateException) },
    };

    [Theory]
    [MemberData(nameof(Templates))]
    public void BadTemplatesAreTemplateErrors(string name, string source, Type expected)
    {
        var e = Record.Exception(() => ChatTemplate.Create(source).Render([ChatMessage.User("hi")], addGenerationPrompt: true));
        Assert.True(e is not null && expected.IsInstanceOfType(e), $"{name}: expected {expected.Name}, got {e?.GetType().Name}: {e?.Message}");
        Assert.False(string.IsNullOrWhiteSpace(e!.Message));
        // The engine is fine afterwards.
        Assert.Equal("hi", ChatTemplate.Create("{{ messages[0].content }}").Render([ChatMessage.User("hi")], addGenerationPrompt: false));
    }
}
