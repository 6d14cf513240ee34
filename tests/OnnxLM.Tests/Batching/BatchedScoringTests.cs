namespace OnnxLM.Tests;

/// <summary>Continuations sharing a context scored as rows of one batched pass equal scoring each after a fork of the context.</summary>
public sealed class BatchedScoringTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)] // the GroupQueryAttention build: continuations of different lengths run as rows of one length
    public async Task ContinuationsOfOneContextScoredInOneBatchEqualForks(bool groupQuery)
    {
        var folder = groupQuery ? KjvTinyGqa.Folder : TestPaths.RepoModel("kjv-tiny");
        using var alone = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = 1 });
        using var batched = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = 8 });
        Assert.NotNull(batched.Runtime.Scheduler);
        ScoreRequest[] requests =
        [
            new("And God said", " Let there be light"),
            new("And God said", " unto Moses"),
            new("And God said", ","),
            new("And God said", " unto them, Be fruitful, and multiply, and replenish the earth"),
            new("In the beginning", " God created the heaven and the earth."),
            new("In the beginning", " was the Word"),
        ];
        var options = new ScoreOptions { TopAlternatives = 2 };
        var expected = await alone.ScoreBatchAsync(requests, options);
        var actual = await batched.ScoreBatchAsync(requests, options);
        for (var i = 0; i < requests.Length; i++)
        {
            Assert.Equal(expected[i].Tokens.Count, actual[i].Tokens.Count);
            Assert.Equal(expected[i].IsGreedy, actual[i].IsGreedy);
            Assert.Equal(expected[i].LogProb, actual[i].LogProb, 1e-4);
            for (var t = 0; t < expected[i].Tokens.Count; t++)
            {
                Assert.Equal(expected[i].Tokens[t].Id, actual[i].Tokens[t].Id);
                Assert.Equal(expected[i].Tokens[t].Rank, actual[i].Tokens[t].Rank);
                Assert.Equal(expected[i].Tokens[t].LogProb, actual[i].Tokens[t].LogProb, 1e-4);
            }
        }

        var choices = await batched.ScoreChoicesAsync("And God said", [" Let there be light", " unto Moses", " the LORD"]);
        var reference = await alone.ScoreChoicesAsync("And God said", [" Let there be light", " unto Moses", " the LORD"]);
        Assert.Equal(reference.Best, choices.Best);
    }

    [SharedModelFact("tiny-llama-fp16")]
    public async Task AGraphThatTakesOneTokenAfterAPastFallsBackToForks()
    {
        using var model = LanguageModel.Load(TestPaths.SharedModel("tiny-llama-fp16"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        Assert.NotNull(model.Runtime.Scheduler); // single-token decode steps batch on this graph; multi-token passes after a past do not
        var scores = await model.ScoreBatchAsync([new ScoreRequest("And God said,", " Let there be"), new ScoreRequest("And God said,", " and it was")]);
        Assert.True(model.Runtime.Graph.SingleTokenWithPast);
        var single = await model.ScoreAsync("And God said,", " Let there be");
        Assert.Equal(single.LogProb, scores[0].LogProb, 2);
    }
}
