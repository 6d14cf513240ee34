using OnnxLM.Sampling;

namespace OnnxLM.Tests;

/// <summary>Each processor on small logit vectors against values worked out by hand from its published definition.</summary>
public sealed class ProcessorTests
{
    private static readonly float Ninf = float.NegativeInfinity;

    private static SamplingContext Context(int[] tokens, int promptLength = 0, int seed = 1)
    {
        var context = new SamplingContext(new Random(seed), promptLength);
        context.SetTokens(tokens, tokens.Length);
        return context;
    }

    private static float[] Run(ILogitProcessor processor, float[] logits, int[]? tokens = null, int promptLength = 0)
    {
        var copy = (float[])logits.Clone();
        processor.Process(copy, Context(tokens ?? [], promptLength));
        return copy;
    }

    // ln of probabilities 0.5, 0.25, 0.125, 0.125: logits of a known distribution.
    private static readonly float[] Halves = [MathF.Log(0.5f), MathF.Log(0.25f), MathF.Log(0.125f), MathF.Log(0.125f)];

    [Theory]
    [InlineData(0.2f, 1)]
    [InlineData(0.9f, 2)]
    [InlineData(0.99f, 3)]
    public void TypicalOnALargeVocabularyEqualsSortingEveryToken(float mass, int seed)
    {
        // Reference: Hugging Face's TypicalLogitsWarper written plainly (softmax, entropy, sort all by |−log p − H|, cumulative mass).
        var random = new Random(seed);
        var logits = Enumerable.Range(0, 5000).Select(i => i % 7 == 0 ? Ninf : (float)(random.NextDouble() * 12 - 6)).ToArray();
        var max = logits.Max();
        var z = logits.Sum(l => Math.Exp(l - max));
        var logp = logits.Select(l => l - max - Math.Log(z)).ToArray();
        var entropy = -logp.Where(double.IsFinite).Sum(lp => Math.Exp(lp) * lp);
        var order = Enumerable.Range(0, logits.Length).Where(i => double.IsFinite(logp[i])).OrderBy(i => Math.Abs(-logp[i] - entropy)).ToArray();
        var keep = new HashSet<int>();
        double cumulative = 0;
        foreach (var i in order)
        {
            keep.Add(i);
            cumulative += Math.Exp(logp[i]);
            if (cumulative >= mass) break;
        }

        var result = Run(new TypicalPProcessor(mass), logits);
        Assert.Equal(Enumerable.Range(0, logits.Length).Select(i => keep.Contains(i) ? logits[i] : Ninf), result);
    }

    [Fact]
    public void TemperatureDivides() => Assert.Equal([1f, -2f, 0.5f], Run(new TemperatureProcessor(2), [2f, -4f, 1f]));

    [Fact]
    public void TopKKeepsTiesAtTheBoundary()
    {
        Assert.Equal([3f, Ninf, 2f, Ninf], Run(new TopKProcessor(2), [3f, 1f, 2f, 0f]));
        Assert.Equal([3f, 2f, 2f, Ninf], Run(new TopKProcessor(2), [3f, 2f, 2f, 0f])); // HF: values ≥ the k-th largest stay
    }

    [Fact]
    public void TopPKeepsTheTokenCrossingTheThreshold()
    {
        // Cumulative 0.5, 0.75, 0.875, 1: p = 0.6 keeps two tokens, p = 0.75 keeps two, p = 0.8 keeps three.
        Assert.Equal([Halves[0], Halves[1], Ninf, Ninf], Run(new TopPProcessor(0.6f), Halves));
        Assert.Equal([Halves[0], Ninf, Ninf, Ninf], Run(new TopPProcessor(0.3f), Halves));
        var three = Run(new TopPProcessor(0.8f), Halves);
        Assert.Equal(1, three.Count(float.IsNegativeInfinity));
        Assert.True(float.IsNegativeInfinity(three[3])); // equal probabilities: the higher id goes first
    }

    [Fact]
    public void MinPIsRelativeToTheTopProbability()
    {
        // p_max = 0.5; min_p 0.3 → floor 0.15 keeps 0.5 and 0.25.
        Assert.Equal([Halves[0], Halves[1], Ninf, Ninf], Run(new MinPProcessor(0.3f), Halves));
        Assert.Equal(Halves, Run(new MinPProcessor(0.25f), Halves));
    }

    [Fact]
    public void TypicalKeepsTokensNearTheEntropy()
    {
        // H = 0.5 ln2 + 0.25·2ln2 + 2·0.125·3ln2 = 1.75 ln2. Surprises: 1, 2, 3, 3 (×ln2). |s − H| = 0.75, 0.25, 1.25, 1.25 (×ln2):
        // order = token 1 (0.25), token 0 (0.5): mass 0.75 reached → p = 0.7 keeps {1, 0}; p = 0.2 keeps {1}.
        Assert.Equal([Halves[0], Halves[1], Ninf, Ninf], Run(new TypicalPProcessor(0.7f), Halves));
        Assert.Equal([Ninf, Halves[1], Ninf, Ninf], Run(new TypicalPProcessor(0.2f), Halves));
    }

    [Fact]
    public void TopNSigmaKeepsLogitsWithinNStandardDeviations()
    {
        // logits 4, 2, 0, -2: mean 1, σ = √5 ≈ 2.236. n = 1 → threshold 1.764 keeps 4 and 2; n = 0 keeps the max only.
        Assert.Equal([4f, 2f, Ninf, Ninf], Run(new TopNSigmaProcessor(1), [4f, 2f, 0f, -2f]));
        Assert.Equal([4f, Ninf, Ninf, Ninf], Run(new TopNSigmaProcessor(0), [4f, 2f, 0f, -2f]));
    }

    [Fact]
    public void EpsilonAndEtaCutoffs()
    {
        Assert.Equal([Halves[0], Halves[1], Ninf, Ninf], Run(new EpsilonCutoffProcessor(0.2f), Halves));
        Assert.Equal([Halves[0], Ninf, Ninf, Ninf], Run(new EpsilonCutoffProcessor(0.9f), Halves)); // the top token always stays
        // η = min(ε, √ε·e^−H), H = 1.75 ln2 = 1.2130: ε = 0.5 → min(0.5, 0.7071·0.2973 = 0.2102) → keeps 0.5 and 0.25.
        Assert.Equal([Halves[0], Halves[1], Ninf, Ninf], Run(new EtaCutoffProcessor(0.5f), Halves));
    }

    [Fact]
    public void RepetitionPenaltyDividesPositiveAndMultipliesNegative()
    {
        // Tokens 0 and 2 were seen (twice for 0: applied once).
        Assert.Equal([1f, 1f, -4f, -1f], Run(new RepetitionPenaltyProcessor(2), [2f, 1f, -2f, -1f], [0, 2, 0]));
    }

    [Fact]
    public void PresenceAndFrequencyPenaltiesCountTheWindow()
    {
        // Window 3 over [1, 0, 0, 2] sees 0, 0, 2: token 0 → −(0.5 + 2·0.25), token 2 → −(0.5 + 0.25); token 1 is outside the window.
        Assert.Equal([-1f, 0f, -0.75f, 0f], Run(new FrequencyPenaltyProcessor(0.5f, 0.25f, 3), [0f, 0f, 0f, 0f], [1, 0, 0, 2]));
    }

    [Fact]
    public void NoRepeatNGramBansCompletions()
    {
        // History 1 2 3 1 2: trigram "1 2 3" exists, so after "1 2" token 3 is banned; bigram size 2 after "2" bans 3 as well.
        Assert.Equal([0f, 0f, 0f, Ninf, 0f], Run(new NoRepeatNGramProcessor(3), new float[5], [1, 2, 3, 1, 2]));
        Assert.Equal([0f, 0f, 0f, Ninf, 0f], Run(new NoRepeatNGramProcessor(2), new float[5], [1, 2, 3, 1, 2]));
        Assert.Equal([Ninf, Ninf, Ninf, Ninf, 0f], Run(new NoRepeatNGramProcessor(1), new float[5], [0, 1, 2, 3]));
    }

    [Fact]
    public void LogitBiasSuppressAndBannedSequences()
    {
        Assert.Equal([1.5f, Ninf, 0f], Run(new LogitBiasProcessor(new Dictionary<int, float> { [0] = 1.5f, [1] = Ninf }), new float[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Run(new LogitBiasProcessor(new Dictionary<int, float> { [9] = 1 }), new float[3]));
        Assert.Equal([0f, Ninf, 0f], Run(new SuppressTokensProcessor([1, 7]), new float[3]));
        // [2] is always banned; [0, 1] bans 1 only right after 0.
        var banned = new BannedSequencesProcessor([[2], [0, 1]]);
        Assert.Equal([0f, Ninf, Ninf], Run(banned, new float[3], [1, 0]));
        Assert.Equal([0f, 0f, Ninf], Run(banned, new float[3], [0, 1]));
    }

    [Fact]
    public void MinNewTokensMasksStopTokensUntilReached()
    {
        var processor = new MinNewTokensProcessor(2, [1]);
        Assert.Equal([0f, Ninf], Run(processor, new float[2], [5, 5, 5], promptLength: 2)); // 1 generated
        Assert.Equal([0f, 0f], Run(processor, new float[2], [5, 5, 5, 5], promptLength: 2)); // 2 generated
    }

    [Fact]
    public void DryPenalisesTokensExtendingARepeat()
    {
        // History a b c d a b c: continuing with d would repeat "a b c d" (match length 3).
        // allowed 2, base 2, multiplier 1 → penalty 1·2^(3−2) = 2 on token 3. Token 9 breaks matches.
        int[] history = [0, 1, 2, 3, 0, 1, 2];
        Assert.Equal([0f, 0f, 0f, -2f], Run(new DryProcessor(1, 2, 2, 100, [9]), new float[4], history));
        Assert.Equal([0f, 0f, 0f, 0f], Run(new DryProcessor(1, 2, 4, 100, [9]), new float[4], history)); // shorter than allowed
        Assert.Equal([0f, 0f, 0f, 0f], Run(new DryProcessor(1, 2, 2, 100, [1]), new float[4], history)); // b breaks the match
    }

    [Fact]
    public void XtcRemovesAllTopChoicesButTheLeastLikely()
    {
        // p = 0.5, 0.25, 0.125, 0.125 with threshold 0.2: tokens 0 and 1 qualify; 0 is removed, 1 (the weakest) stays.
        Assert.Equal([Ninf, Halves[1], Halves[2], Halves[3]], Run(new XtcProcessor(1, 0.2f), Halves));
        Assert.Equal(Halves, Run(new XtcProcessor(1, 0.3f), Halves)); // only one token above 0.3: nothing removed
        Assert.Equal(Halves, Run(new XtcProcessor(0, 0.2f), Halves));
    }

    [Fact]
    public void GreedyTiesGoToTheLowestId() => Assert.Equal(1, GreedyPicker.Instance.Pick([0f, 2f, 2f, 1f], Context([])));

    [Fact]
    public void MirostatV2NeverPicksTokensAboveTheSurpriseCutoff()
    {
        // τ = 1.05 bits: μ starts at 2.1, so only tokens with −log₂p ≤ 2.1 (p = 0.5 or 0.25) can be drawn at first.
        var picker = new MirostatPicker(2, 1.05f, 0.1f);
        var context = Context([], seed: 3);
        var first = picker.Pick(Halves, context);
        Assert.Contains(first, new[] { 0, 1 });
        // μ moves by −η·(surprise − τ) after the draw.
        var surprise = first == 0 ? -Math.Log2(0.5 / 0.75) : -Math.Log2(0.25 / 0.75);
        Assert.Equal(2.1 - 0.1 * (surprise - 1.05), picker.Mu, 1e-6);
    }

    [Fact]
    public void OptionsNameTheBadValue()
    {
        var o = new GenerationOptions();
        Assert.Equal("MinP", Assert.Throws<InvalidOptionException>(() => o.MinP = 1.5f).ParamName);
        Assert.Equal("TypicalP", Assert.Throws<InvalidOptionException>(() => o.TypicalP = 0).ParamName);
        Assert.Equal("EpsilonCutoff", Assert.Throws<InvalidOptionException>(() => o.EpsilonCutoff = 1).ParamName);
        Assert.Equal("RepetitionPenalty", Assert.Throws<InvalidOptionException>(() => o.RepetitionPenalty = 0).ParamName);
        Assert.Equal("PresencePenalty", Assert.Throws<InvalidOptionException>(() => o.PresencePenalty = float.NaN).ParamName);
        Assert.Equal("TopNSigma", Assert.Throws<InvalidOptionException>(() => o.TopNSigma = -1).ParamName);
        Assert.Equal("Mirostat", Assert.Throws<InvalidOptionException>(() => o.Mirostat = 3).ParamName);
        Assert.Equal("XtcThreshold", Assert.Throws<InvalidOptionException>(() => o.XtcThreshold = 0.6f).ParamName);
        Assert.Equal("DryBase", Assert.Throws<InvalidOptionException>(() => o.DryBase = 1).ParamName);
        Assert.Equal("MaxTime", Assert.Throws<InvalidOptionException>(() => o.MaxTime = TimeSpan.Zero).ParamName);
        Assert.Equal("SamplerOrder", Assert.Throws<InvalidOptionException>(() => o.SamplerOrder = [SamplerStage.TopK, SamplerStage.TopK]).ParamName);
    }

    [Fact]
    public void PresetsOrderTheStagesDifferently()
    {
        var options = new GenerationOptions { Temperature = 0.5f, TopK = 3, MinP = 0.1f };
        var hf = SamplingPipeline.Create(options, [], null).Processors.Select(p => p.GetType()).ToArray();
        options.SamplerOrder = GenerationOptions.LlamaCppSamplerOrder;
        var llama = SamplingPipeline.Create(options, [], null).Processors.Select(p => p.GetType()).ToArray();
        Assert.Equal([typeof(TemperatureProcessor), typeof(TopKProcessor), typeof(MinPProcessor)], hf);
        Assert.Equal([typeof(TopKProcessor), typeof(MinPProcessor), typeof(TemperatureProcessor)], llama);

        // Order matters: min-p after temperature 0.5 sees a sharper distribution than before it.
        float[] logits = [0f, -1f, -2f];
        var context = Context([]);
        var a = (float[])logits.Clone();
        new TemperatureProcessor(0.5f).Process(a, context);
        new MinPProcessor(0.2f).Process(a, context);
        var b = (float[])logits.Clone();
        new MinPProcessor(0.2f).Process(b, context);
        new TemperatureProcessor(0.5f).Process(b, context);
        Assert.Equal(1, a.Count(float.IsFinite)); // after sharpening to 0, −2, −4: e^-2 = 0.135 < 0.2
        Assert.Equal(2, b.Count(float.IsFinite)); // before it: e^-1 = 0.37 ≥ 0.2, e^-2 = 0.135 < 0.2
        var c = (float[])logits.Clone();
        new MinPProcessor(0.1f).Process(c, context);   // e^-2 = 0.135 ≥ 0.1: kept before sharpening
        Assert.Equal(3, c.Count(float.IsFinite));
        var d = (float[])logits.Clone();
        new TemperatureProcessor(0.5f).Process(d, context);
        new MinPProcessor(0.1f).Process(d, context);   // e^-4 = 0.018 < 0.1: dropped after sharpening
        Assert.Equal(2, d.Count(float.IsFinite));
    }
}
