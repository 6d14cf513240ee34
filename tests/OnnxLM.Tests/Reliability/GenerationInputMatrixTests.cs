namespace OnnxLM.Tests;

/// <summary>
/// The bad-input matrix for calls on a loaded model: token ids, options, lengths and text. Each bad call is its
/// documented typed exception whose message names the problem, and the model answers the next good call exactly
/// as before (the same greedy tokens).
/// </summary>
public sealed class GenerationInputMatrixTests : IClassFixture<GenerationInputMatrixTests.Fixture>
{
    private readonly Fixture _fixture;

    public GenerationInputMatrixTests(Fixture fixture) => _fixture = fixture;

    /// <summary>kjv-tiny loaded once, and its greedy answer to a fixed prompt before any bad call.</summary>
    public sealed class Fixture : IDisposable
    {
        public LanguageModel Model { get; } = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));

        public IReadOnlyList<int> Baseline { get; }

        public Fixture() => Baseline = Model.GenerateAsync("In the beginning", new GenerationOptions { MaxNewTokens = 6, Temperature = 0 }).GetAwaiter().GetResult().TokenIds;

        public void Dispose() => Model.Dispose();
    }

    private LanguageModel Model => _fixture.Model;

    private async Task AssertStillUsableAsync()
    {
        var again = await Model.GenerateAsync("In the beginning", new GenerationOptions { MaxNewTokens = 6, Temperature = 0 });
        Assert.Equal(_fixture.Baseline, again.TokenIds);
    }

    public static TheoryData<string, string> Calls => new()
    {
        { "negative prompt id", "-1" },
        { "prompt id = vocabulary size", "4096" },
        { "prompt id int.MaxValue", "2147483647" },
        { "empty prompt ids", "empty" },
        { "score context id beyond the vocabulary", "4096" },
        { "score continuation id negative", "-7" },
        { "score empty continuation", "continuation" },
        { "decode id beyond the vocabulary", "4096" },
        { "stop token id beyond the vocabulary", "StopTokenIds" },
        { "logit bias id beyond the vocabulary", "LogitBias" },
        { "logit bias NaN", "LogitBias" },
        { "suppressed id negative", "SuppressTokens" },
        { "banned sequence empty", "BannedSequences" },
        { "banned sequence id beyond the vocabulary", "BannedSequences" },
        { "min new tokens above max", "MinNewTokens" },
        { "prompt longer than the context", "context" },
        { "session longer than the context", "context" },
        { "1 MB prompt", "context" },
        { "rewind beyond the length", "length" },
        { "many samples zero", "count" },
        { "many samples above the bound", "count" },
        { "beams above the bound", "NumBeams" },
        { "50 M-character prompt", "refused before tokenizing" },
        { "50 M-character beam search prompt", "refused before tokenizing" },
        { "50 M-character score", "refused before tokenizing" },
        { "50 M-character score batch", "refused before tokenizing" },
        { "2 M-character chat message", "refused before tokenizing" },
        { "score of empty text", "continuation" },
        { "perplexity of empty text", "text" },
        { "chat with no messages", "messages" },
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public async Task BadCallsAreTypedErrorsAndTheModelStaysUsable(string name, string named)
    {
        var vocab = Model.Info.VocabularySize;
        var e = await Record.ExceptionAsync(async () =>
        {
            switch (name)
            {
                case "negative prompt id": await Model.GenerateAsync([1, -1]); break;
                case "prompt id = vocabulary size": await Model.GenerateAsync([1, vocab]); break;
                case "prompt id int.MaxValue": await Model.GenerateAsync([int.MaxValue]); break;
                case "empty prompt ids": await Model.GenerateAsync(Array.Empty<int>()); break;
                case "score context id beyond the vocabulary": await Model.ScoreAsync([1, vocab], [5]); break;
                case "score continuation id negative": await Model.ScoreAsync([1, 5], [-7]); break;
                case "score empty continuation": await Model.ScoreAsync([1, 5], []); break;
                case "decode id beyond the vocabulary": Model.Tokenizer.Decode([5, vocab]); break;
                case "stop token id beyond the vocabulary": await Model.GenerateAsync("In", new GenerationOptions { StopTokenIds = [vocab + 5] }); break;
                case "logit bias id beyond the vocabulary": await Model.GenerateAsync("In", new GenerationOptions { LogitBias = { [vocab] = 5 } }); break;
                case "logit bias NaN": await Model.GenerateAsync("In", new GenerationOptions { LogitBias = { [7] = float.NaN } }); break;
                case "suppressed id negative": await Model.GenerateAsync("In", new GenerationOptions { SuppressTokens = { -2 } }); break;
                case "banned sequence empty": await Model.GenerateAsync("In", new GenerationOptions { BannedSequences = { Array.Empty<int>() } }); break;
                case "banned sequence id beyond the vocabulary": await Model.GenerateAsync("In", new GenerationOptions { BannedSequences = { new[] { 5, vocab } } }); break;
                case "min new tokens above max": await Model.GenerateAsync("In", new GenerationOptions { MinNewTokens = 20, MaxNewTokens = 5 }); break;
                case "prompt longer than the context": await Model.GenerateAsync(Enumerable.Repeat(455, Model.Info.ContextLength + 3).ToArray()); break;
                case "session longer than the context": Model.CreateSession(Model.Info.ContextLength * 4); break;
                case "1 MB prompt": await Model.GenerateAsync(new string('a', 1 << 20)); break;
                case "rewind beyond the length":
                {
                    using var session = Model.CreateSession();
                    session.Append([1, 5, 6]);
                    session.Rewind(9);
                    break;
                }

                case "many samples zero": await Model.GenerateManyAsync("In", 0); break;
                case "many samples above the bound": await Model.GenerateManyAsync("In", LanguageModel.MaxSamples + 1); break;
                case "beams above the bound": await Model.BeamSearchAsync("In", new BeamSearchOptions { NumBeams = 10_000 }); break;
                case "50 M-character prompt": await Model.GenerateAsync(new string('a', 50_000_000)); break;
                case "50 M-character beam search prompt": await Model.BeamSearchAsync(new string('a', 50_000_000)); break;
                case "50 M-character score": await Model.ScoreAsync(new string('a', 50_000_000), " b"); break;
                case "50 M-character score batch": await Model.ScoreBatchAsync([new("In", " the"), new(new string('a', 50_000_000), " b")]); break;
                case "2 M-character chat message": await Model.GenerateChatAsync([Chat.ChatMessage.User(new string('a', 2_000_000))]); break;
                case "score of empty text": await Model.ScoreAsync("", ""); break;
                case "perplexity of empty text": await Model.ScorePerplexityAsync(""); break;
                case "chat with no messages": await Model.GenerateChatAsync([]); break;
                default: throw new InvalidOperationException($"no such case: {name}");
            }
        });

        Assert.True(e is ArgumentException or ContextLengthExceededException, $"{name}: expected an ArgumentException or ContextLengthExceededException, got {e?.GetType().Name ?? "nothing"}: {e?.Message}");
        Assert.True(e!.Message.Contains(named, StringComparison.OrdinalIgnoreCase), $"{name}: '{e.Message}' does not name '{named}'");
        await AssertStillUsableAsync();
    }

    public static TheoryData<string> FloatOptions => new()
    {
        "Temperature", "TopP", "MinP", "TypicalP", "TopNSigma", "EpsilonCutoff", "EtaCutoff", "RepetitionPenalty", "PresencePenalty",
        "FrequencyPenalty", "DryMultiplier", "DryBase", "XtcProbability", "XtcThreshold", "MirostatTau", "MirostatEta",
    };

    [Theory]
    [MemberData(nameof(FloatOptions))]
    public void NonFiniteOptionValuesAreRefusedByName(string option)
    {
        var property = typeof(GenerationOptions).GetProperty(option)!;
        foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            var options = new GenerationOptions();
            var e = Assert.Throws<System.Reflection.TargetInvocationException>(() => property.SetValue(options, bad)).InnerException;
            var range = Assert.IsType<InvalidOptionException>(e);
            Assert.Equal(option, range.ParamName);
        }
    }

    [Theory]
    [InlineData("\ud800 lone high surrogate")]
    [InlineData("lone low \udc00 surrogate")]
    [InlineData("nul \0 inside")]
    [InlineData("")]
    public async Task OddTextIsHandledWithoutErrors(string text)
    {
        // Lone surrogates become U+FFFD as UTF-8 encoding does; U+0000 is an ordinary character.
        var ids = Model.Tokenizer.Encode(text, addSpecialTokens: false);
        var expected = text.Replace('\ud800', '\uFFFD').Replace('\udc00', '\uFFFD');
        Assert.Equal(expected, Model.Tokenizer.Decode(ids));
        var result = await Model.GenerateAsync("In" + text, new GenerationOptions { MaxNewTokens = 2 });
        Assert.Equal(2, result.TokenIds.Count);
        await AssertStillUsableAsync();
    }

    [Fact]
    public async Task ConcurrentMisuseAndUseAfterDisposeAreRefusedByName()
    {
        using var chat = Model.CreateChat();
        var first = chat.SendAsync("In the beginning", new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [] });
        var second = await Record.ExceptionAsync(() => chat.SendAsync("And God said"));
        await first;
        Assert.IsType<InvalidOperationException>(second);
        Assert.Contains("one turn at a time", second!.Message, StringComparison.OrdinalIgnoreCase);

        var session = Model.CreateSession();
        session.Dispose();
        Assert.Contains(nameof(GenerationSession), Assert.Throws<ObjectDisposedException>(() => session.Append(5)).Message);
        chat.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => chat.SendAsync("x"));
        var decoder = Model.Tokenizer.CreateStreamingDecoder();
        Assert.Throws<ArgumentOutOfRangeException>(() => decoder.Append(Model.Tokenizer.VocabularySize + 1));
        Assert.Equal("In", decoder.Append(Model.Tokenizer.Encode("In", addSpecialTokens: false)[0]) + decoder.Flush());
        await AssertStillUsableAsync();
    }

    [Fact]
    public async Task MaxNewTokensNearIntMaxIsCappedByTheContext()
    {
        var result = await Model.GenerateAsync("In the beginning", new GenerationOptions { MaxNewTokens = int.MaxValue, StopTokenIds = [] });
        Assert.Equal(FinishReason.Length, result.FinishReason);
        Assert.Equal(Model.Info.ContextLength, result.PromptTokenCount + result.TokenIds.Count);
        await AssertStillUsableAsync();
    }
}
