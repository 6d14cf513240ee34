using OnnxLM.Chat;

namespace OnnxLM.Tests;

/// <summary>
/// The public members hosting and the server build on (kjv-tiny): encoding that refuses text too long for the context,
/// chat decoding from rendered ids, a session that reuses its cached prefix and generates in place, and scoring ids
/// with alternatives. Each gives what the older way gives.
/// </summary>
public sealed class DecodingEntranceTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));

    public void Dispose() => _model.Dispose();

    private static GenerationOptions Greedy(int tokens = 10) => new() { Temperature = 0, MaxNewTokens = tokens };

    private static async Task<List<GeneratedToken>> ToListAsync(IAsyncEnumerable<GeneratedToken> tokens)
    {
        var list = new List<GeneratedToken>();
        await foreach (var token in tokens) list.Add(token);
        return list;
    }

    [Fact]
    public void EncodeIsTheTokenizersEncodingForTheModelAndRefusesHugeTextBeforeTokenizing()
    {
        Assert.Equal(_model.Tokenizer.EncodeForModel("In the beginning", null), _model.Encode("In the beginning"));
        Assert.Equal(_model.Tokenizer.Encode("In the beginning", addSpecialTokens: false), _model.Encode("In the beginning", addBosToken: false));
        var huge = new string('a', (int)Math.Min(int.MaxValue / 2, _model.Runtime.MaxTextLength + 1));
        Assert.Contains("refused before tokenizing", Assert.Throws<ContextLengthExceededException>(() => _model.Encode(huge)).Message);
        Assert.Throws<ContextLengthExceededException>(() => _model.ThrowIfTextTooLong(huge));
        _model.ThrowIfTextTooLong("In the beginning");
    }

    [Fact]
    public async Task ChatFromRenderedIdsMatchesChatFromMessages()
    {
        ChatMessage[] messages = [ChatMessage.User("And God said")];
        var fromMessages = await _model.GenerateChatAsync(messages, Greedy());
        var fromIds = await ToListAsync(_model.GenerateChatStreamingAsync(_model.EncodeChat(messages), Greedy(), CancellationToken.None));
        Assert.Equal(fromMessages.TokenIds, fromIds.Select(t => t.Id));
    }

    [Fact]
    public async Task APrefilledSessionReusesItsPrefixAndGeneratesWhatAFreshRunGenerates()
    {
        var first = _model.Encode("In the beginning God created");
        var second = _model.Encode("In the beginning God created the heaven and the earth. And");
        using var session = _model.CreateSession();
        Assert.Equal(0, session.Prefill(first));
        var firstReply = await ToListAsync(session.GenerateStreamingAsync(Greedy()));
        Assert.Equal((await _model.GenerateAsync(first, Greedy())).TokenIds, firstReply.Select(t => t.Id));

        var common = first.Zip(second).TakeWhile(p => p.First == p.Second).Count();
        var reused = session.Prefill(second);
        Assert.True(reused >= common && reused < second.Length, $"reused {reused}, common prefix of the prompts {common}");
        Assert.Equal(second, session.Tokens.ToArray());
        var secondReply = await ToListAsync(session.GenerateStreamingAsync(Greedy()));
        Assert.Equal((await _model.GenerateAsync(second, Greedy())).TokenIds, secondReply.Select(t => t.Id));

        // Default stops: the chat path stops at the end-of-turn ids unless the options name others.
        session.Prefill(second);
        var withStops = await ToListAsync(session.GenerateStreamingAsync(Greedy(), _model.EndOfTurnTokenIds));
        Assert.Equal(secondReply.Select(t => t.Id), withStops.Select(t => t.Id));

        using var empty = _model.CreateSession();
        Assert.Throws<InvalidOperationException>(() => empty.GenerateStreamingAsync());
        Assert.Throws<ArgumentException>(() => empty.Prefill([]));
    }

    [Fact]
    public async Task ScoringIdsReportsAlternativesAndMatchesTheOverloadWithout()
    {
        var ids = _model.Encode("In the beginning God created the heaven");
        var plain = await _model.ScoreAsync(ids[..2], ids[2..]);
        var withTop = await _model.ScoreTokenIdsAsync(ids[..2], ids[2..], new ScoreOptions { TopAlternatives = 3 });
        Assert.Equal(plain.Tokens.Select(t => t.LogProb), withTop.Tokens.Select(t => t.LogProb));
        Assert.All(withTop.Tokens, t => Assert.Equal(3, t.Alternatives.Count));
    }

    [Fact]
    public void BatchingIsReportedAsTheModelDecodes()
    {
        Assert.Equal(_model.Runtime.Scheduler is not null, _model.BatchesGenerations);
        using var alone = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { MaxBatchSize = 1 });
        Assert.False(alone.BatchesGenerations);
    }

    [Fact]
    public async Task GeneratedTopLogProbsShareTheChosenTokensLogSoftmaxAndMatchScoring()
    {
        var prompt = _model.Encode("In the beginning");
        // Sampled (hot) so that the chosen token is sometimes not the most likely one; the reported distribution is the raw one either way.
        var options = new GenerationOptions { Temperature = 1.5f, Seed = 7, MaxNewTokens = 12, TopLogProbs = 5 };
        var tokens = (await _model.GenerateAsync(prompt, options)).Tokens;
        Assert.NotEmpty(tokens);
        var listed = 0;
        var context = prompt.ToList();
        foreach (var token in tokens)
        {
            Assert.Equal(5, token.TopLogProbs.Count);
            if (token.TopLogProbs.FirstOrDefault(t => t.Id == token.Id) is { } self)
            {
                Assert.Equal(token.LogProb, self.LogProb); // exactly: one computation feeds both
                listed++;
            }

            // Independently: scoring the same token in double precision gives the same alternatives, in order, to float rounding.
            var score = await _model.ScoreTokenIdsAsync(context, [token.Id], new ScoreOptions { TopAlternatives = 5 });
            var expected = score.Tokens[0];
            Assert.Equal(expected.LogProb, token.LogProb, 1e-4);
            Assert.Equal(expected.Alternatives.Select(a => a.Id), token.TopLogProbs.Select(a => a.Id));
            foreach (var (want, got) in expected.Alternatives.Zip(token.TopLogProbs))
            {
                Assert.Equal(want.LogProb, got.LogProb, 1e-4);
                Assert.Equal(want.Text, got.Text);
            }

            context.Add(token.Id);
        }

        Assert.True(listed > 0, "no chosen token was among its top 5: the exact-equality check never ran");
        Assert.Empty((await _model.GenerateAsync(prompt, Greedy(3))).Tokens[0].TopLogProbs); // off by default
        Assert.Throws<InvalidOptionException>(() => new GenerationOptions { TopLogProbs = 101 });
    }
}
