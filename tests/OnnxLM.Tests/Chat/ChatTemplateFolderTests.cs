using System.Text.Json;
using System.Text.Json.Nodes;
using OnnxLM.Chat;

namespace OnnxLM.Tests;

/// <summary>Where a chat template is found in a model folder, and what happens when its files are wrong.</summary>
[Collection(TimedCollection.Name)]
public sealed class ChatTemplateFolderTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("onnxlm-chat-template-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private void Write(string file, string text) => File.WriteAllText(Path.Combine(_folder, file), text);

    [Fact]
    public void NamedTemplatesPickToolUseWhenToolsArePassed()
    {
        Write("tokenizer_config.json", JsonSerializer.Serialize(new
        {
            bos_token = new { content = "<s>", lstrip = false },
            eos_token = "</s>",
            chat_template = new[]
            {
                new { name = "default", template = "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}" },
                new { name = "tool_use", template = "{{ bos_token }}tools={{ tools | map(attribute='function.name') | join(',') }}" },
            },
        }));
        var template = ChatTemplate.FromFolder(_folder)!;
        Assert.Equal(["default", "tool_use"], template.Names.Order());
        Assert.Equal(Path.Combine(_folder, "tokenizer_config.json"), template.Origin);
        Assert.Equal("<s>[hi]", template.Render([ChatMessage.User("hi")]));
        Assert.Equal("<s>tools=f,g", template.Render([ChatMessage.User("hi")], tools: [new ChatTool("f"), new ChatTool("g")]));
        Assert.Equal("<s>[x]", template.RenderNamed("default", new Dictionary<string, object?> { ["messages"] = new[] { new Dictionary<string, object?> { ["content"] = "x" } } }));
        Assert.Throws<KeyNotFoundException>(() => template.RenderNamed("rag", new Dictionary<string, object?>()));
    }

    [Fact]
    public void AJinjaFileWinsOverTheConfigAndNoTemplateIsNull()
    {
        Assert.Null(ChatTemplate.FromFolder(_folder));
        Assert.False(ChatTemplate.Exists(_folder));
        Write("tokenizer_config.json", "{\"eos_token\": \"<|end|>\", \"chat_template\": \"config\"}");
        Assert.Equal("config", ChatTemplate.FromFolder(_folder)!.Render([]));
        Write("chat_template.json", "{\"chat_template\": \"json {{ eos_token }}\"}");
        Assert.Equal("json <|end|>", ChatTemplate.FromFolder(_folder)!.Render([]));
        Write("chat_template.jinja", "jinja {{ eos_token }}\n");
        Assert.Equal("jinja <|end|>", ChatTemplate.FromFolder(_folder)!.Render([]));
        Assert.True(ChatTemplate.Exists(_folder));
    }

    [Theory]
    [InlineData("{\"chat_template\": 42}", "chat_template must be a string or a list")]
    [InlineData("{\"chat_template\": [{\"name\": \"default\"}]}", "must have a string 'name' and 'template'")]
    [InlineData("{\"chat_template\": []}", "chat_template is an empty list")]
    [InlineData("{not json", "is not valid JSON")]
    public void MalformedConfigsAreModelFormatErrors(string config, string message)
    {
        Write("tokenizer_config.json", config);
        var ex = Assert.Throws<ModelFormatException>(() => ChatTemplate.FromFolder(_folder));
        Assert.Contains(message, ex.Message);
        Assert.Equal(Path.Combine(_folder, "tokenizer_config.json"), ex.Path);
    }

    [Fact]
    public void ABrokenTemplateNamesItsFileAndPosition()
    {
        Write("tokenizer_config.json", "{\"chat_template\": \"{% for m in messages %}\\n{{ m.content \"}");
        var ex = Assert.Throws<TemplateSyntaxException>(() => ChatTemplate.FromFolder(_folder));
        Assert.Contains("tokenizer_config.json", ex.Message);
        Assert.Equal(2, ex.Line);
    }

    /// <summary>
    /// A model whose tokenizer_config.json carries a hostile template: a 30,000-link chain (which used to overflow the
    /// stack at the first chat request, killing the process) or a macro that calls itself twice per level 40 levels deep
    /// (which used to run for hours). The model loads; every chat request fails with a typed limit, and the model still works.
    /// </summary>
    [Theory]
    [InlineData("chain")]
    [InlineData("fan-out")]
    public async Task AModelWithAHostileTemplateLoadsAndItsChatRequestsFailWithALimit(string kind)
    {
        var source = TestPaths.RepoModel("kjv-tiny");
        foreach (var file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(_folder, Path.GetFileName(file)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "tokenizer_config.json")))!.AsObject();
        config["chat_template"] = kind == "chain"
            ? "{{ 1" + string.Concat(Enumerable.Repeat(" + 1", 30_000)) + " }}"
            : "{% macro f(n) %}{% if n > 0 %}{% set _ = f(n-1) %}{% set _ = f(n-1) %}{% endif %}{% endmacro %}{{ f(40) }}";
        Write("tokenizer_config.json", config.ToJsonString());

        using var model = LanguageModel.Load(_folder);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<TemplateLimitExceededException>(() => model.GenerateChatAsync([ChatMessage.User("hi")]));
        Assert.Contains(kind == "chain" ? "(TemplateOptions.MaxDepth)" : "(TemplateOptions.MaxSteps", ex.Message);
        using var chat = model.CreateChat();
        await Assert.ThrowsAsync<TemplateLimitExceededException>(() => chat.SendAsync("hi"));
        Assert.Empty(chat.Messages); // the failed turn is not kept
        // Two requests, each stopped by its bound (a fan-out render spends MaxSteps, about half a second alone).
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), clock.Elapsed.ToString());
        Assert.InRange((await model.GenerateAsync("In the beginning", new GenerationOptions { Temperature = 0, MaxNewTokens = 4 })).TokenIds.Count, 1, 4);
    }

    [Fact]
    public void MessagesReachTheTemplateAsTransformersPassesThem()
    {
        var template = ChatTemplate.Create("{{ messages | tojson }}|{{ tools | tojson }}");
        var args = JsonDocument.Parse("{\"q\": 1}").RootElement;
        var text = template.Render(
            [ChatMessage.Assistant(null, new ChatToolCall("f", args, "id1")), ChatMessage.Tool("42", "id1", "f")],
            tools: [new ChatTool("f", "does f", JsonDocument.Parse("{\"type\": \"object\"}").RootElement)]);
        Assert.Equal(
            "[{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"id1\", \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"q\": 1}}}]}, " +
            "{\"role\": \"tool\", \"content\": \"42\", \"tool_call_id\": \"id1\", \"name\": \"f\"}]|" +
            "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"does f\", \"parameters\": {\"type\": \"object\"}}}]", text);
    }
}
