using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OnnxLM.Chat;

namespace OnnxLM.Server.Tests;

/// <summary>What an OpenAI-format message carries beyond text reaches the chat template: <c>reasoning_content</c>, <c>content: null</c>.</summary>
public sealed class ChatMessageFieldsTests
{
    private static readonly string Root = Path.GetFullPath(Path.Combine(ServerTests.Model, "..", ".."));

    [Fact]
    public async Task ReasoningContentReachesQwen3sTemplate()
    {
        var templateFile = Path.Combine(Root, "tests", "data", "chat-templates", "qwen3", "chat_template.jinja");
        var (app, http) = await ServerTests.StartAsync(model: o => o.ChatTemplatePath = templateFile);
        await using var _ = app;
        using var __ = http;
        using var reference = LanguageModel.Load(ServerTests.Model);
        var template = ChatTemplate.Create(File.ReadAllText(templateFile), reference.ChatTemplate.SpecialTokens);
        const string Reasoning = "17 * 3 = 51, since 17 * 3 = 30 + 21.";
        int PromptTokens(string? reasoning) => reference.Tokenizer.Encode(
            template.Render([ChatMessage.User("What is 17 * 3?"), new ChatMessage("assistant", "51") { ReasoningContent = reasoning }], addGenerationPrompt: true),
            addSpecialTokens: false).Length;

        using var response = await http.PostAsJsonAsync("/v1/chat/completions", new
        {
            messages = new object[]
            {
                new { role = "user", content = "What is 17 * 3?" },
                new { role = "assistant", content = "51", reasoning_content = Reasoning },
            },
            max_tokens = 1,
            temperature = 0,
        });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var promptTokens = JsonDocument.Parse(body).RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        Assert.NotEqual(PromptTokens(null), PromptTokens(Reasoning)); // the reasoning is in the prompt, not dropped
        Assert.Equal(PromptTokens(Reasoning), promptTokens);
    }
}
