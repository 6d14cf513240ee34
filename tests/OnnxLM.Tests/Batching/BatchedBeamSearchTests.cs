namespace OnnxLM.Tests;

/// <summary>Beam search with the beams as rows of one batched cache gives the hypotheses of one session per beam.</summary>
public sealed class BatchedBeamSearchTests
{
    [Theory]
    [InlineData("And God said", 4, 24, true)]
    [InlineData("In the beginning", 3, 30, false)]
    [InlineData("Blessed", 6, 16, false)]
    public async Task BatchedBeamsEqualOneSessionPerBeam(string prompt, int beams, int newTokens, bool earlyStopping)
    {
        using var alone = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = 1 });
        using var batched = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = 8 });
        Assert.NotNull(batched.Runtime.Scheduler);
        var options = new BeamSearchOptions { NumBeams = beams, MaxNewTokens = newTokens, EarlyStopping = earlyStopping };
        var expected = await alone.BeamSearchAsync(prompt, options);
        var actual = await batched.BeamSearchAsync(prompt, options);
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].TokenIds, actual[i].TokenIds);
            Assert.Equal(expected[i].Text, actual[i].Text);
            Assert.Equal(expected[i].FinishReason, actual[i].FinishReason);
            Assert.Equal(expected[i].LogProb, actual[i].LogProb, 1e-3);
        }
    }
}
