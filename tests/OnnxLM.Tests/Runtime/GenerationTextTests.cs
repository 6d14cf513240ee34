namespace OnnxLM.Tests;

public sealed class GenerationTextTests
{
    [SharedModelFact("torch-llama-fp32")]
    public async Task StreamedTextContinuesThePromptExactly()
    {
        using var model = ConformanceModels.Load("torch-llama-fp32");
        const string prompt = "And the LORD said unto Moses,";
        var options = new GenerationOptions { MaxNewTokens = 40, Temperature = 0.9f, Seed = 3, StopTokenIds = [] };

        var streamed = new List<GeneratedToken>();
        await foreach (var token in model.GenerateStreamingAsync(prompt, options))
        {
            streamed.Add(token);
        }

        var result = await model.GenerateAsync(prompt, options);
        Assert.Equal(result.TokenIds, streamed.Select(t => t.Id).ToArray());
        Assert.Equal(result.Text, string.Concat(streamed.Select(t => t.Text)));

        // The prompt followed by the streamed text is exactly what decoding the whole sequence gives:
        // SentencePiece's "▁" after "Moses," is a space, not swallowed as a leading space.
        var promptIds = model.Tokenizer.Encode(prompt);
        Assert.Equal(model.Tokenizer.Decode([.. promptIds, .. result.TokenIds], skipSpecialTokens: true), prompt + result.Text);
        Assert.StartsWith(" ", result.Text);
        Assert.Equal(FinishReason.Length, streamed[^1].FinishReason);
        Assert.All(streamed[..^1], t => Assert.Null(t.FinishReason));
    }

    [SharedModelFact("torch-llama-fp32")]
    public async Task EosEndsGenerationWithStopAndNoText()
    {
        using var model = ConformanceModels.Load("torch-llama-fp32");
        var prompt = model.Tokenizer.Encode("The LORD is my shepherd; I shall not want.");
        var free = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 5, StopTokenIds = [] });

        // Declare the model's own second greedy token a stop token: generation must end right there.
        var stop = free.TokenIds[1];
        var stopped = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 5, StopTokenIds = [stop] });
        Assert.Equal(free.TokenIds.Take(2), stopped.TokenIds);
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        Assert.Equal("", stopped.Tokens[^1].Text);
        Assert.Equal(model.Tokenizer.Decode([.. prompt, free.TokenIds[0]], true), model.Tokenizer.Decode(prompt, true) + stopped.Text);
    }

    [SharedModelFact("torch-llama-fp32")]
    public async Task LogProbsAreTheRawModelDistribution()
    {
        using var model = ConformanceModels.Load("torch-llama-fp32");
        var prompt = model.Tokenizer.Encode("In the beginning");
        var result = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 6, Temperature = 0.7f, TopK = 20, Seed = 11, StopTokenIds = [] });
        var score = await model.ScoreAsync(prompt, result.TokenIds);
        for (var i = 0; i < result.Tokens.Count; i++)
        {
            Assert.Equal(score.Tokens[i].LogProb, result.Tokens[i].LogProb, 1e-4);
        }
    }
}
