namespace OnnxLM.Tests;

public sealed class BeamAndStopTests
{
    private const string Model = "torch-llama-fp32";

    [SharedModelFact(Model)]
    public async Task OneBeamEqualsGreedy()
    {
        using var model = ConformanceModels.Load(Model);
        var prompt = model.Tokenizer.Encode("And the LORD said unto Moses,");
        var greedy = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 12, StopTokenIds = [] });
        var beams = await model.BeamSearchAsync(prompt, new BeamSearchOptions { NumBeams = 1, MaxNewTokens = 12, StopTokenIds = [] });
        Assert.Single(beams);
        Assert.Equal(greedy.TokenIds, beams[0].TokenIds);
    }

    [SharedModelFact(Model)]
    public async Task BeamsAreSortedAndTheirLogProbsMatchScoring()
    {
        using var model = ConformanceModels.Load(Model);
        var prompt = model.Tokenizer.Encode("In the beginning");
        var options = new BeamSearchOptions { NumBeams = 4, MaxNewTokens = 10, StopTokenIds = [] };
        var beams = await model.BeamSearchAsync(prompt, options);
        Assert.Equal(4, beams.Count);
        for (var i = 1; i < beams.Count; i++) Assert.True(beams[i - 1].Score >= beams[i].Score);
        Assert.Equal(beams.Count, beams.Select(b => string.Join(",", b.TokenIds)).Distinct().Count());
        foreach (var beam in beams)
        {
            var score = await model.ScoreAsync(prompt, beam.TokenIds);
            Assert.Equal(score.LogProb, beam.LogProb, 1e-3);
            Assert.Equal(beam.LogProb / Math.Pow(beam.TokenIds.Count, options.LengthPenalty), beam.Score, 1e-9);
        }

        // The best beam is at least as likely as greedy decoding of the same length.
        var greedy = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 10, StopTokenIds = [] });
        Assert.True(beams[0].LogProb >= greedy.LogProb - 1e-6);
    }

    [SharedModelFact(Model)]
    public async Task StopSequencesSplitAcrossTokensEndGenerationWithoutTheirText()
    {
        using var model = ConformanceModels.Load(Model);
        var prompt = "And the LORD said unto Moses,";
        var free = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 30, StopTokenIds = [] });

        // Pick a stop string that straddles a token boundary in the free text: the end of token 3 and the start of token 4.
        var decoded = model.Tokenizer;
        var ids = model.Tokenizer.Encode(prompt);
        var before = decoded.Decode([.. ids, .. free.TokenIds.Take(3)], true).Length - prompt.Length;
        var stop = free.Text.Substring(before - 2, 4);
        Assert.True(free.Text.IndexOf(stop, StringComparison.Ordinal) == before - 2, "the stop string must first occur at the boundary");

        var options = new GenerationOptions { MaxNewTokens = 30, StopTokenIds = [] };
        options.StopSequences.Add(stop);
        var streamed = new List<GeneratedToken>();
        await foreach (var token in model.GenerateStreamingAsync(prompt, options)) streamed.Add(token);
        var text = string.Concat(streamed.Select(t => t.Text));
        Assert.Equal(free.Text[..(before - 2)], text);
        Assert.Equal(FinishReason.Stop, streamed[^1].FinishReason);
        Assert.Equal(4, streamed.Count); // the token completing the stop string ends the stream
        var result = await model.GenerateAsync(prompt, options);
        Assert.Equal(text, result.Text);
    }

    [SharedModelFact(Model)]
    public async Task ManySamplesShareThePrefillAndFollowTheirSeeds()
    {
        using var model = ConformanceModels.Load(Model);
        var options = new GenerationOptions { MaxNewTokens = 8, Temperature = 1, Seed = 10, StopTokenIds = [] };
        var many = await model.GenerateManyAsync("In the beginning", 3, options);
        Assert.Equal(3, many.Count);
        for (var i = 0; i < 3; i++)
        {
            var single = await model.GenerateAsync("In the beginning", new GenerationOptions { MaxNewTokens = 8, Temperature = 1, Seed = 10 + i, StopTokenIds = [] });
            Assert.Equal(single.TokenIds, many[i].TokenIds);
        }
    }

    [SharedModelFact(Model)]
    public async Task MinNewTokensAndMaxTime()
    {
        using var model = ConformanceModels.Load(Model);
        var prompt = model.Tokenizer.Encode("The LORD is my shepherd; I shall not want.");
        var free = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 6, StopTokenIds = [] });
        var stop = free.TokenIds[0];
        var forced = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 6, StopTokenIds = [stop], MinNewTokens = 3 });
        Assert.True(forced.TokenIds.Take(3).All(id => id != stop));

        var timed = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 200, StopTokenIds = [], MaxTime = TimeSpan.FromTicks(1) });
        Assert.Equal(FinishReason.TimeLimit, timed.FinishReason);
        Assert.Single(timed.TokenIds);
    }
}
