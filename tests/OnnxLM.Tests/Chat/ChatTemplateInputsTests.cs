using System.Text.Json;
using OnnxLM.Chat;

namespace OnnxLM.Tests;

/// <summary>
/// What a chat template receives besides plain text turns, where the conformance fixtures cannot show it: the errors of
/// inconsistent messages and tools, which templates take content parts, special tokens from special_tokens_map.json,
/// and the zone strftime_now writes in.
/// </summary>
public sealed class ChatTemplateInputsTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("onnxlm-chat-inputs-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void InconsistentMessagesAndToolsFailNamingTheField()
    {
        var template = ChatTemplate.Create("{{ messages | tojson }}{{ tools | tojson }}");
        var both = new ChatMessage("user", "hi") { ContentParts = [ChatMessage.TextPart("hi")] };
        Assert.Contains("both Content and ContentParts", Assert.Throws<ArgumentException>(() => template.Render([both])).Message);

        var ownField = new ChatMessage("user", "hi") { AdditionalProperties = new Dictionary<string, object?> { ["content"] = "other" } };
        Assert.Contains("AdditionalProperties has 'content'", Assert.Throws<ArgumentException>(() => template.Render([ownField])).Message);

        var nullPart = new ChatMessage("user", null) { ContentParts = [null!] };
        Assert.Contains("null content part", Assert.Throws<ArgumentException>(() => template.Render([nullPart])).Message);

        var tool = new ChatTool("f") { AdditionalProperties = new Dictionary<string, object?> { ["parameters"] = "{}" } };
        Assert.Contains("The tool 'f' has 'parameters'", Assert.Throws<ArgumentException>(() => template.Render([ChatMessage.User("hi")], tools: [tool])).Message);
        Assert.Throws<ArgumentException>(() => template.Render([ChatMessage.User("hi")], tools: [null!]));
    }

    [Fact]
    public void MessageAndToolFieldsKeepTransformersOrder()
    {
        var template = ChatTemplate.Create("{{ messages | tojson }}|{{ tools | tojson }}");
        var message = new ChatMessage("assistant", null)
        {
            ReasoningContent = "r",
            ContentParts = [ChatMessage.TextPart("a"), new Dictionary<string, object?> { ["type"] = "image" }],
            AdditionalProperties = new Dictionary<string, object?> { ["weight"] = 0 },
        };
        var tool = new ChatTool("f") { AdditionalProperties = new Dictionary<string, object?> { ["strict"] = true } };
        Assert.Equal(
            "[{\"role\": \"assistant\", \"content\": [{\"type\": \"text\", \"text\": \"a\"}, {\"type\": \"image\"}], \"reasoning_content\": \"r\", \"weight\": 0}]|" +
            "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"properties\": {}}, \"strict\": true}}]",
            template.Render([message], tools: [tool]));
    }

    [SkippableFact]
    public void TemplatesThatLoopOverContentReadParts()
    {
        Assert.True(ChatTemplate.Create("{% for m in messages %}{% for p in m['content'] %}{{ p.text }}{% endfor %}{% endfor %}").ReadsContentParts);
        Assert.True(ChatTemplate.Create("{% if x %}{% macro f(m) %}{% for p in m.content %}{% endfor %}{% endmacro %}{% endif %}").ReadsContentParts);
        Assert.False(ChatTemplate.Create("{% for m in messages %}{{ m.content }}{% endfor %}").ReadsContentParts);
        var qwen3 = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "data", "chat-templates", "qwen3", "chat_template.jinja"));
        Assert.False(ChatTemplate.Create(qwen3).ReadsContentParts);

        var gemma3 = Path.Combine(TestPaths.RepoRoot, "build", "fixtures", "node_modules", "@lenml", "tokenizer-gemma3", "models");
        Skip.IfNot(Directory.Exists(gemma3), $"{gemma3} not found (run `npm ci` in build/fixtures)");
        Assert.True(ChatTemplate.FromFolder(gemma3)!.ReadsContentParts);
    }

    [Fact]
    public void SpecialTokensMapOverridesTheConfigAndObjectsGiveTheirContent()
    {
        File.WriteAllText(Path.Combine(_folder, "tokenizer_config.json"), """
            {"bos_token": "<old>", "eos_token": {"__type": "AddedToken", "content": "</s>", "lstrip": false},
             "pad_token": null, "chat_template": "{{ bos_token }}|{{ eos_token }}|{{ sep_token }}|{{ mask_token }}|{{ pad_token is defined }}"}
            """);
        File.WriteAllText(Path.Combine(_folder, "special_tokens_map.json"), """
            {"bos_token": {"content": "<s>", "single_word": false}, "sep_token": "<sep>", "mask_token": {"content": "<mask>"},
             "additional_special_tokens": ["<x>"]}
            """);
        var template = ChatTemplate.FromFolder(_folder)!;
        Assert.Equal(["bos_token=<s>", "eos_token=</s>", "mask_token=<mask>", "sep_token=<sep>"], template.SpecialTokens.Select(p => $"{p.Key}={p.Value}").Order(StringComparer.Ordinal));
        Assert.Equal("<s>|</s>|<sep>|<mask>|false", template.Render([]));
    }

    [Fact]
    public void StrftimeNowWritesUtcUnlessAZoneIsGiven()
    {
        var instant = new DateTimeOffset(2026, 3, 7, 23, 30, 0, TimeSpan.Zero);
        // A clock whose local zone is 9 hours ahead: strftime_now still writes UTC by default.
        var tokyoClock = new ZonedClock(instant, TimeZoneInfo.CreateCustomTimeZone("plus9", TimeSpan.FromHours(9), "plus9", "plus9"));
        const string Source = "{{ strftime_now('%Y-%m-%d %H:%M') }}";
        Assert.Equal("2026-03-07 23:30", ChatTemplate.Create(Source, options: new TemplateOptions { Clock = tokyoClock }).Render([]));
        var india = TimeZoneInfo.CreateCustomTimeZone("plus530", new TimeSpan(5, 30, 0), "plus530", "plus530");
        Assert.Equal("2026-03-08 05:00", ChatTemplate.Create(Source, options: new TemplateOptions { Clock = tokyoClock, TimeZone = india }).Render([]));

        // A clock given for one render wins over the template's, in the template's zone.
        var template = ChatTemplate.Create(Source, options: new TemplateOptions { Clock = tokyoClock, TimeZone = india });
        Assert.Equal("2025-01-01 05:29", template.Render([], clock: new ZonedClock(new DateTimeOffset(2024, 12, 31, 23, 59, 0, TimeSpan.Zero), TimeZoneInfo.Utc)));
        Assert.Throws<ArgumentNullException>(() => new TemplateOptions { TimeZone = null! });
    }

    private sealed class ZonedClock(DateTimeOffset now, TimeZoneInfo zone) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => zone;
    }

    [Fact]
    public void RenderDefaultsAreTransformersAndLanguageModelStillPrompts()
    {
        var template = ChatTemplate.Create("{{ add_generation_prompt }}|{{ tools is none }}|{{ tools | length if tools is not none else '' }}|{{ documents is none }}");
        Assert.Equal("false|true||true", template.Render([ChatMessage.User("hi")]));
        Assert.Equal("false|false|0|true", template.Render([ChatMessage.User("hi")], tools: []));
        Assert.Equal("true|true||false", template.Render([ChatMessage.User("hi")], true, variables: new Dictionary<string, object?> { ["documents"] = JsonDocument.Parse("[]").RootElement }));

        // The model's methods render to prompt for a reply, so they keep adding the generation prompt by default.
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        Assert.Equal("User: hi\nAssistant:", model.ApplyChatTemplate([ChatMessage.User("hi")]));
        Assert.Equal("User: hi\n", model.ChatTemplate.Render([ChatMessage.User("hi")]));
    }
}
