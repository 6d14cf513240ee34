using OnnxLM.Chat;

namespace OnnxLM.Tests;

/// <summary>
/// Conversations on kjv-tiny (no chat template of its own, so the plain template): later turns reuse the cache and
/// produce exactly what a fresh run over the whole conversation produces; overflow, cancellation and misuse are typed.
/// </summary>
public sealed class ChatSessionTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));

    public void Dispose() => _model.Dispose();

    private static GenerationOptions Greedy(int tokens = 12) => new() { Temperature = 0, MaxNewTokens = tokens };

    [Fact]
    public void AModelWithoutATemplateUsesThePlainOne()
    {
        Assert.False(_model.HasChatTemplate);
        Assert.Same(ChatTemplate.Plain, _model.ChatTemplate);
        Assert.Equal("Be brief.\n\nUser: In the beginning\nAssistant: God created\nUser: And then?\nAssistant:",
            _model.ApplyChatTemplate([ChatMessage.System("Be brief."), ChatMessage.User("In the beginning"), ChatMessage.Assistant("God created"), ChatMessage.User("And then?")]));
        Assert.Equal(_model.Tokenizer.Encode("User: hi\nAssistant:", addSpecialTokens: false), _model.EncodeChat([ChatMessage.User("hi")]));
        Assert.Equal(_model.Info.EosTokenIds, _model.EndOfTurnTokenIds);
    }

    [Fact]
    public async Task LaterTurnsPrefillOnlyTheNewTokensAndMatchAFreshRun()
    {
        using var chat = _model.CreateChat(new ChatSessionOptions { SystemPrompt = "The words of the book." });
        var first = await chat.SendAsync("In the beginning", Greedy());
        Assert.Equal(0, first.ReusedTokenCount);
        Assert.Equal(first.PromptTokenCount, first.PrefilledTokenCount);

        var second = await chat.SendAsync("And the earth was", Greedy());
        var secondPrompt = _model.EncodeChat(chat.Messages.Take(chat.Messages.Count - 1));
        Assert.Equal(secondPrompt.Length, second.PromptTokenCount);
        // What the cache held (first prompt + its reply but the last token) against the new prompt, counted here.
        int[] cached = [.. _model.EncodeChat(chat.Messages.Take(2)), .. first.Result.TokenIds.SkipLast(1)];
        var common = cached.Zip(secondPrompt).TakeWhile(p => p.First == p.Second).Count();
        Assert.Equal(Math.Min(common, secondPrompt.Length - 1), second.ReusedTokenCount);
        // The whole first prompt and the start of the reply are reused (the reply re-tokenized inside the template may differ at its end).
        Assert.True(second.ReusedTokenCount > first.PromptTokenCount, $"reused {second.ReusedTokenCount}, first prompt {first.PromptTokenCount}");

        var fresh = await _model.GenerateAsync(secondPrompt, Greedy());
        Assert.Equal(fresh.TokenIds, second.Result.TokenIds);
        Assert.Equal(fresh.Text, second.Text);
        Assert.Equal(["system", "user", "assistant", "user", "assistant"], chat.Messages.Select(m => m.Role));
        Assert.Equal(second.Text, chat.Messages[^1].Content);
    }

    [Fact]
    public async Task GenerateChatMatchesGeneratingFromTheRenderedPrompt()
    {
        ChatMessage[] messages = [ChatMessage.User("And God said")];
        var chat = await _model.GenerateChatAsync(messages, Greedy());
        var direct = await _model.GenerateAsync(_model.EncodeChat(messages), Greedy());
        Assert.Equal(direct.TokenIds, chat.TokenIds);
        var streamed = new List<int>();
        await foreach (var token in _model.GenerateChatStreamingAsync(messages, Greedy())) streamed.Add(token.Id);
        Assert.Equal(direct.TokenIds, streamed);
    }

    [Fact]
    public async Task AConversationPastTheContextFailsOrDropsItsOldestTurns()
    {
        var longText = string.Join(' ', Enumerable.Repeat("and the LORD spake unto Moses", 8));
        using var strict = _model.CreateChat(new ChatSessionOptions { SystemPrompt = "Scripture." });
        for (var i = 0; ; i++)
        {
            try
            {
                await strict.SendAsync(longText, Greedy(4));
            }
            catch (ContextLengthExceededException ex)
            {
                Assert.Equal(_model.Info.ContextLength, ex.MaxLength);
                Assert.Contains("DropOldestTurns", ex.Message);
                Assert.Equal(1 + (2 * i), strict.Messages.Count); // the refused message was not kept
                break;
            }

            Assert.True(i < 20, "the context never filled");
        }

        using var rolling = _model.CreateChat(new ChatSessionOptions { SystemPrompt = "Scripture.", Overflow = ChatOverflow.DropOldestTurns });
        for (var i = 0; i < 12; i++)
        {
            var reply = await rolling.SendAsync($"{i}: {longText}", Greedy(4));
            Assert.True(reply.PromptTokenCount < _model.Info.ContextLength);
        }

        Assert.Equal("system", rolling.Messages[0].Role);
        Assert.StartsWith("11: ", rolling.Messages[^2].Content);
        Assert.True(rolling.Messages.Count < 1 + (2 * 12));
        Assert.Throws<InvalidOptionException>(() => new ChatSessionOptions { ReservedReplyTokens = 0 });
    }

    [Fact]
    public async Task ACancelledTurnLeavesTheConversationAsItWasAndOneTurnRunsAtATime()
    {
        using var chat = _model.CreateChat();
        using var cts = new CancellationTokenSource();
        var seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in chat.SendStreamingAsync("In the beginning", Greedy(50), cts.Token))
            {
                if (++seen == 1)
                {
                    await Assert.ThrowsAsync<InvalidOperationException>(() => chat.SendAsync("meanwhile"));
                    cts.Cancel();
                }
            }
        });
        Assert.Empty(chat.Messages);

        var reply = await chat.SendAsync("In the beginning", Greedy());
        var fresh = await _model.GenerateAsync(_model.EncodeChat([ChatMessage.User("In the beginning")]), Greedy());
        Assert.Equal(fresh.TokenIds, reply.Result.TokenIds);

        chat.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => chat.SendAsync("after"));
    }

    [SharedModelFact("tiny-llama-fp16")]
    public async Task AModelWithATemplateRendersAndStopsAtItsEndOfTurn()
    {
        using var model = LanguageModel.Load(TestPaths.SharedModel("tiny-llama-fp16"));
        Assert.True(model.HasChatTemplate);
        Assert.Equal("<s>", model.ChatTemplate.SpecialTokens["bos_token"]);
        Assert.Contains(model.Tokenizer.SpecialTokens["</s>"], model.EndOfTurnTokenIds);
        var prompt = model.ApplyChatTemplate([ChatMessage.User("Hello")]);
        Assert.StartsWith("<s>", prompt);
        var ids = model.EncodeChat([ChatMessage.User("Hello")]);
        Assert.Equal(model.Tokenizer.BosTokenId, ids[0]);
        Assert.NotEqual(model.Tokenizer.BosTokenId, ids[1]); // the template's <s>, not a second one from the tokenizer
        var reply = await model.GenerateChatAsync([ChatMessage.User("Hello")], Greedy(8));
        Assert.Equal(ids.Length, reply.PromptTokenCount);
    }
}
