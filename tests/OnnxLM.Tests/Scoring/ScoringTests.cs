namespace OnnxLM.Tests;

public sealed class ScoringTests
{
    private const string Model = "torch-llama-fp32";

    [SharedModelFact(Model)]
    public async Task TokenizationFollowsLmEvaluationHarness()
    {
        using var model = ConformanceModels.Load(Model);
        var tokenizer = model.Tokenizer;

        // Trailing whitespace of the context moves to the continuation; continuation = encode(whole) after encode(context).
        var moved = await model.ScoreAsync("And God said ", "unto Moses");
        var plain = await model.ScoreAsync("And God said", " unto Moses");
        Assert.Equal(plain.Tokens.Select(t => t.Id), moved.Tokens.Select(t => t.Id));
        Assert.Equal(plain.LogProb, moved.LogProb, 1e-9);
        var whole = tokenizer.Encode("And God said unto Moses", addSpecialTokens: false);
        var context = tokenizer.Encode("And God said", addSpecialTokens: false);
        Assert.Equal(whole[context.Length..], plain.Tokens.Select(t => t.Id).ToArray());

        // lm-eval since October 2025: the tokenizer's own special tokens (Llama: BOS);
        // AddBosToken = false is the earlier rule (no special tokens), true asks for BOS alone.
        Assert.Equal([1, .. context], plain.ContextTokenIds);
        var withoutBos = await model.ScoreAsync("And God said", " unto Moses", new ScoreOptions { AddBosToken = false });
        Assert.Equal(context, withoutBos.ContextTokenIds);
        Assert.True(plain.LogProb > withoutBos.LogProb, $"with BOS {plain.LogProb}, without {withoutBos.LogProb}");
        var withBos = await model.ScoreAsync("And God said", " unto Moses", new ScoreOptions { AddBosToken = true });
        Assert.Equal([1, .. context], withBos.ContextTokenIds);
        var empty = await model.ScoreAsync("", "In the beginning");
        Assert.Equal([1], empty.ContextTokenIds);
        Assert.Equal(tokenizer.Encode("In the beginning", addSpecialTokens: false), empty.Tokens.Select(t => t.Id).ToArray());
    }

    [SharedModelFact(Model)]
    public async Task BatchedSharedPrefixScoringEqualsScoringAlone()
    {
        using var model = ConformanceModels.Load(Model);
        ScoreRequest[] requests =
        [
            new("And the LORD said unto", " Moses"),
            new("And the LORD said unto", " Abraham, Get thee out of thy country"),
            new("In the beginning", " God created the heaven and the earth."),
            new("And the LORD said unto", " the serpent"),
        ];
        var progress = new List<double>();
        var batch = await model.ScoreBatchAsync(requests, null, new Progress(progress.Add));
        for (var i = 0; i < requests.Length; i++)
        {
            var alone = await model.ScoreAsync(requests[i].Context, requests[i].Continuation);
            Assert.Equal(alone.Tokens.Select(t => t.Id), batch[i].Tokens.Select(t => t.Id));
            Assert.Equal(alone.LogProb, batch[i].LogProb, 1e-4);
            for (var t = 0; t < alone.Tokens.Count; t++) Assert.Equal(alone.Tokens[t].Rank, batch[i].Tokens[t].Rank);
        }

        Assert.Equal(4, progress.Count);
        Assert.Equal(1.0, progress[^1]);
    }

    [SharedModelFact(Model)]
    public async Task TopAlternativesAreTheMostLikelyTokensWithTheirLogProbs()
    {
        using var model = ConformanceModels.Load(Model);
        var score = await model.ScoreAsync("And God said, Let there be", " light", new ScoreOptions { TopAlternatives = 5 });
        var token = score.Tokens[0];
        Assert.Equal(5, token.Alternatives.Count);
        for (var i = 1; i < 5; i++) Assert.True(token.Alternatives[i - 1].LogProb >= token.Alternatives[i].LogProb);
        Assert.Equal(token.IsGreedy, token.Alternatives[0].Id == token.Id);
        if (token.Rank <= 5) Assert.Equal(token.LogProb, token.Alternatives[token.Rank - 1].LogProb, 1e-9);

        // Each alternative's log-prob is what scoring that token gives.
        foreach (var alternative in token.Alternatives)
        {
            var context = model.Tokenizer.Encode("And God said, Let there be");
            var direct = await model.ScoreAsync(context, [alternative.Id]);
            Assert.Equal(direct.LogProb, alternative.LogProb, 1e-6);
        }
    }

    [SharedModelFact(Model)]
    public async Task MultipleChoicePicksTheObviousAnswer()
    {
        using var model = ConformanceModels.Load(Model);
        var result = await model.ScoreChoicesAsync("In the beginning God created the heaven and the",
            [" earth.", " banana.", " computer keyboard."]);
        Assert.Equal(0, result.Best);
        Assert.Equal(0, result.BestPerByte);
        Assert.Equal(3, result.Choices.Count);
        Assert.Equal(result.Choices[0].LogProb / result.Choices[0].Score.Tokens.Count, result.Choices[0].LogProbPerToken, 1e-12);
        Assert.Equal(result.Choices[0].LogProb / 7, result.Choices[0].LogProbPerByte, 1e-12); // " earth." is 7 bytes
    }

    /// <summary>A small hand-made multiple-choice set; the first choice is the King James text, the others are not.</summary>
    public static TheoryData<string, string[]> ClearCases => new()
    {
        { "In the beginning God created the heaven and the", [" earth.", " banana.", " computer keyboard."] },
        { "The LORD is my shepherd; I shall not", [" want.", " dance.", " email you."] },
        { "And God said, Let there be", [" light: and there was light.", " pizza: and there was pizza.", " traffic."] },
        { "Our Father which art in", [" heaven, Hallowed be thy name.", " Cleveland, Hallowed be thy name.", " debt, Hallowed be thy name."] },
        { "And the LORD spake unto Moses,", [" saying,", " laughing,", " texting,"] },
    };

    [Theory]
    [MemberData(nameof(ClearCases))]
    public async Task MultipleChoiceOnTheRepositoryModelPicksTheScripture(string question, string[] choices)
    {
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var result = await model.ScoreChoicesAsync(question, choices);
        Assert.Equal(0, result.Best);
        Assert.Equal(0, result.BestPerToken);
        Assert.Equal(0, result.BestPerByte);

        // Each choice's score is what scoring it alone gives (the batch shares the question's prefill).
        for (var i = 0; i < choices.Length; i++)
        {
            var alone = await model.ScoreAsync(question, choices[i]);
            Assert.Equal(alone.LogProb, result.Choices[i].LogProb, 1e-4);
        }
    }

    private sealed class Progress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}
