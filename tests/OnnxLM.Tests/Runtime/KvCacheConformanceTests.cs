namespace OnnxLM.Tests;

public sealed class KvCacheConformanceTests
{
    [Fact]
    public void CachedGreedyStepsMatchFullSequencePassesOnTheRepositoryModel() => CachedGreedyStepsMatchFullSequencePasses(ConformanceModels.Repo);

    [SharedModelTheory]
    [MemberData(nameof(ConformanceModels.Shared), MemberType = typeof(ConformanceModels))]
    public void CachedGreedyStepsMatchFullSequencePassesOnSharedModels(string name) => CachedGreedyStepsMatchFullSequencePasses(name);

    private static void CachedGreedyStepsMatchFullSequencePasses(string name)
    {
        var testCase = ConformanceModels.Get(name);
        using var model = ConformanceModels.Load(name);
        using var cached = model.CreateSession();
        cached.Append(testCase.PromptIds);

        var worst = 0f;
        for (var step = 0; step < 20; step++)
        {
            using var fresh = model.CreateSession();
            fresh.Append(cached.Tokens);
            var diff = MaxAbsDiff(cached.NextTokenLogits, fresh.NextTokenLogits);
            worst = Math.Max(worst, diff);
            Assert.True(diff <= testCase.Tolerance, $"{name} step {step}: cached vs full-sequence logits differ by {diff}");

            cached.Append(ArgMaxLowestId(cached.NextTokenLogits));
        }

        Assert.Equal(testCase.PromptIds.Length + 20, cached.Length);
    }

    [Fact]
    public void RewindAndForkReproduceTheSameLogitsOnTheRepositoryModel() => RewindAndForkReproduceTheSameLogits(ConformanceModels.Repo);

    [SharedModelTheory]
    [MemberData(nameof(ConformanceModels.Shared), MemberType = typeof(ConformanceModels))]
    public void RewindAndForkReproduceTheSameLogitsOnSharedModels(string name) => RewindAndForkReproduceTheSameLogits(name);

    private static void RewindAndForkReproduceTheSameLogits(string name)
    {
        var prompt = ConformanceModels.Get(name).PromptIds;
        using var model = ConformanceModels.Load(name);
        using var session = model.CreateSession();
        session.Append(prompt);
        var atPrompt = session.NextTokenLogits.ToArray();
        using var fork = session.Fork();

        session.Append(ArgMaxLowestId(session.NextTokenLogits));
        session.Append(ArgMaxLowestId(session.NextTokenLogits));
        session.Rewind(prompt.Length);

        Assert.Equal(prompt, session.Tokens.ToArray());
        Assert.True(MaxAbsDiff(atPrompt, session.NextTokenLogits) <= ConformanceModels.Get(name).Tolerance);
        Assert.Equal(atPrompt, fork.NextTokenLogits.ToArray());
        Assert.Equal(prompt, fork.Tokens.ToArray());

        // Both continue identically after diverging histories were dropped.
        var next = ArgMaxLowestId(atPrompt);
        session.Append(next);
        fork.Append(next);
        Assert.True(MaxAbsDiff(session.NextTokenLogits, fork.NextTokenLogits) <= ConformanceModels.Get(name).Tolerance);
    }

    [Fact]
    public void PaddedBatchScoringEqualsScoringEachPairAloneOnTheRepositoryModel()
    {
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        Assert.True(PaddedBatch.IsSupported(model.Runtime.Graph)); // the builder's graphs take a batch, so this exercises padding
        PaddedBatchScoringEqualsScoringEachPairAlone(ConformanceModels.Repo);
    }

    [SharedModelTheory]
    [MemberData(nameof(ConformanceModels.Shared), MemberType = typeof(ConformanceModels))]
    public void PaddedBatchScoringEqualsScoringEachPairAloneOnSharedModels(string name) => PaddedBatchScoringEqualsScoringEachPairAlone(name);

    private static void PaddedBatchScoringEqualsScoringEachPairAlone(string name)
    {
        var testCase = ConformanceModels.Get(name);
        var p = testCase.PromptIds;
        using var model = ConformanceModels.Load(name);
        // Distinct contexts of different lengths: one right-padded batch when the graph takes one.
        (int[], int[])[] pairs = [(p[..2], p[2..]), (p[..5], p[5..]), (p[1..4], p[4..7]), (p[..3], p[3..4]), (p[2..7], p[7..])];
        var batch = Scorer.ScoreBatch(model.Runtime, pairs, alternatives: 0, null, CancellationToken.None, padded: true);
        for (var i = 0; i < pairs.Length; i++)
        {
            var alone = Scorer.Score(model.Runtime, pairs[i].Item1, pairs[i].Item2, 0, CancellationToken.None);
            Assert.Equal(pairs[i].Item2, batch[i].Tokens.Select(t => t.Id).ToArray());
            for (var t = 0; t < alone.Tokens.Count; t++)
            {
                Assert.True(Math.Abs(alone.Tokens[t].LogProb - batch[i].Tokens[t].LogProb) <= testCase.Tolerance * 10,
                    $"{name} pair {i} token {t}: alone {alone.Tokens[t].LogProb}, batched {batch[i].Tokens[t].LogProb}");
            }
        }
    }

    [Fact]
    public Task ScoreEqualsLogSoftmaxSumOfOneFullPassOnTheRepositoryModel() => ScoreEqualsLogSoftmaxSumOfOneFullPass(ConformanceModels.Repo);

    [SharedModelTheory]
    [MemberData(nameof(ConformanceModels.Shared), MemberType = typeof(ConformanceModels))]
    public Task ScoreEqualsLogSoftmaxSumOfOneFullPassOnSharedModels(string name) => ScoreEqualsLogSoftmaxSumOfOneFullPass(name);

    private static async Task ScoreEqualsLogSoftmaxSumOfOneFullPass(string name)
    {
        var ids = ConformanceModels.Get(name).PromptIds;
        using var model = ConformanceModels.Load(name);
        var split = ids.Length / 2;
        var score = await model.ScoreAsync(ids[..split], ids[split..]);

        // Independent computation: one full-sequence pass, log-softmax by hand per position.
        var vocab = model.Info.VocabularySize;
        var all = new float[(ids.Length - 1) * vocab];
        using (var session = model.CreateSession())
        {
            session.AppendWithAllLogits(ids[..^1], all, CancellationToken.None);
        }

        double expected = 0;
        var greedy = true;
        for (var t = split; t < ids.Length; t++)
        {
            var row = all.AsSpan((t - 1) * vocab, vocab);
            var max = double.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, v);
            double sum = 0;
            foreach (var v in row) sum += Math.Exp(v - max);
            var logProb = row[ids[t]] - max - Math.Log(sum);
            Assert.Equal(logProb, score.Tokens[t - split].LogProb, 1e-9);
            expected += logProb;
            greedy &= ArgMaxLowestId(row) == ids[t];
        }

        Assert.Equal(expected, score.LogProb, 1e-9);
        Assert.Equal(greedy, score.IsGreedy);
        Assert.Equal(ids[split..], score.Tokens.Select(t => t.Id).ToArray());
    }

    [Fact]
    public Task GreedyIsDeterministicAndSeededSamplingReproducibleOnTheRepositoryModel() => GreedyIsDeterministicAndSeededSamplingReproducible(ConformanceModels.Repo);

    [SharedModelTheory]
    [MemberData(nameof(ConformanceModels.Shared), MemberType = typeof(ConformanceModels))]
    public Task GreedyIsDeterministicAndSeededSamplingReproducibleOnSharedModels(string name) => GreedyIsDeterministicAndSeededSamplingReproducible(name);

    private static async Task GreedyIsDeterministicAndSeededSamplingReproducible(string name)
    {
        var prompt = ConformanceModels.Get(name).PromptIds;
        using var model = ConformanceModels.Load(name);
        var greedy = new GenerationOptions { MaxNewTokens = 12, StopTokenIds = [] };
        var first = await model.GenerateAsync(prompt, greedy);
        var second = await model.GenerateAsync(prompt, greedy);
        Assert.Equal(first.TokenIds, second.TokenIds);
        Assert.Equal(12, first.TokenIds.Count);
        Assert.Equal(FinishReason.Length, first.FinishReason);

        // Greedy generation equals stepping a session by argmax.
        using var session = model.CreateSession();
        session.Append(prompt);
        foreach (var id in first.TokenIds)
        {
            Assert.Equal(ArgMaxLowestId(session.NextTokenLogits), id);
            session.Append(id);
        }

        var sampling = new GenerationOptions { MaxNewTokens = 12, StopTokenIds = [], Temperature = 1.5f, TopK = 50, TopP = 0.95f, Seed = 1234 };
        var a = await model.GenerateAsync(prompt, sampling);
        var b = await model.GenerateAsync(prompt, sampling);
        Assert.Equal(a.TokenIds, b.TokenIds);
        var other = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 12, StopTokenIds = [], Temperature = 1.5f, TopK = 50, TopP = 0.95f, Seed = 99 });
        Assert.NotEqual(a.TokenIds, other.TokenIds);
    }

    internal static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        var max = 0f;
        for (var i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }

        return max;
    }

    /// <summary>Argmax written independently of the library: strict greater-than, so ties keep the lowest id.</summary>
    internal static int ArgMaxLowestId(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }

        return best;
    }
}
