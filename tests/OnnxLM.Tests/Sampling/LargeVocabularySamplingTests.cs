using OnnxLM.Sampling;

namespace OnnxLM.Tests;

/// <summary>
/// Top-k, top-p, min-p and the penalties at the vocabularies of Llama 3 (128,256) and Qwen2 (151,936), and on small and odd
/// sizes, against the definitions computed the plain way: every finite token sorted by descending logit (ascending id
/// among equals) and the cumulative probability walked in that order (the full-sort top-p the partial one replaced),
/// the k-th largest of a full sort, penalties counted from scratch. Random logits over many seeds, with ties, −∞, k at
/// and beyond the vocabulary and p = 1; the masked vectors must be identical. A steady typical chain allocates nothing.
/// </summary>
public sealed class LargeVocabularySamplingTests
{
    private static readonly int[] Vocabularies = [1, 2, 7, 33, 1000, 128_256, 151_936];

    /// <summary>Random logits of one of several shapes, chosen by the seed.</summary>
    private static float[] Logits(int vocab, int seed)
    {
        var random = new Random(seed);
        var shape = seed % 6;
        var scale = shape switch { 0 => 1.0, 1 => 4.0, 2 => 12.0, _ => 3.0 };
        var logits = new float[vocab];
        for (var i = 0; i < vocab; i++)
        {
            // Box–Muller normal values; a few strong tokens, as a language model's head gives.
            var normal = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            logits[i] = (float)(normal * scale + (random.Next(1000) == 0 ? 8 : 0));
            if (shape == 3) logits[i] = MathF.Round(logits[i] * 2) / 2; // many ties
            if (shape == 4 && random.Next(3) == 0) logits[i] = float.NegativeInfinity; // a third masked already
        }

        if (shape == 5)
        {
            Array.Fill(logits, float.NegativeInfinity); // all masked but a few equal ones
            for (var k = 0; k < Math.Min(3, vocab); k++) logits[random.Next(vocab)] = 1.5f;
        }

        return logits;
    }

    private static SamplingContext Context(int[] tokens, int promptLength = 0)
    {
        var context = new SamplingContext(new Random(1), promptLength);
        context.SetTokens(tokens, tokens.Length);
        return context;
    }

    /// <summary>Top-p by a full sort: the reference.</summary>
    private static float[] FullSortTopP(float[] logits, float p)
    {
        var result = (float[])logits.Clone();
        if (p >= 1) return result;
        var order = Enumerable.Range(0, logits.Length).Where(i => !float.IsNegativeInfinity(logits[i]))
            .OrderByDescending(i => logits[i]).ThenBy(i => i).ToArray();
        if (order.Length == 0) return result;
        var max = logits[order[0]];
        var weights = order.Select(i => Math.Exp((double)(logits[i] - max))).ToArray();
        var total = weights.Sum();
        double cumulative = 0;
        var keep = order.Length;
        for (var r = 0; r < order.Length; r++)
        {
            cumulative += weights[r] / total;
            if (cumulative >= p)
            {
                keep = r + 1;
                break;
            }
        }

        for (var r = keep; r < order.Length; r++) result[order[r]] = float.NegativeInfinity;
        return result;
    }

    /// <summary>Top-k by a full sort: everything below the k-th largest logit goes (ties with it stay).</summary>
    private static float[] FullSortTopK(float[] logits, int k)
    {
        var result = (float[])logits.Clone();
        if (k >= logits.Length) return result;
        var threshold = logits.OrderByDescending(l => l).ElementAt(k - 1);
        for (var i = 0; i < result.Length; i++)
        {
            if (result[i] < threshold) result[i] = float.NegativeInfinity;
        }

        return result;
    }

    public static TheoryData<int> Seeds()
    {
        var data = new TheoryData<int>();
        for (var seed = 0; seed < 24; seed++) data.Add(seed);
        return data;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void TopPWithoutAFullSortKeepsWhatAFullSortKeeps(int seed)
    {
        foreach (var vocab in Vocabularies)
        {
            if (vocab > 100_000 && seed >= 8) continue; // the reference's full sort of 150k is slow: the first 8 seeds cover every shape
            var logits = Logits(vocab, seed * 7919 + vocab);
            foreach (var p in new[] { 1e-6f, 0.1f, 0.5f, 0.9f, 0.95f, 0.999f, 0.99999f, 1f })
            {
                var actual = (float[])logits.Clone();
                new TopPProcessor(p).Process(actual, Context([]));
                var expected = FullSortTopP(logits, p);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"top-p {p}, vocabulary {vocab}, seed {seed}: kept {Kept(actual)} tokens, a full sort keeps {Kept(expected)}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void TopKKeepsWhatAFullSortKeeps(int seed)
    {
        foreach (var vocab in Vocabularies)
        {
            var logits = Logits(vocab, seed * 31 + vocab);
            foreach (var k in new[] { 1, 2, 40, 1000, vocab - 1, vocab, vocab + 5 })
            {
                if (k < 1) continue;
                var actual = (float[])logits.Clone();
                new TopKProcessor(k).Process(actual, Context([]));
                Assert.True(FullSortTopK(logits, k).AsSpan().SequenceEqual(actual), $"top-k {k}, vocabulary {vocab}, seed {seed}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void MinPAndPenaltiesEqualTheirDefinitions(int seed)
    {
        const int vocab = 151_936;
        var logits = Logits(vocab, seed + 17);
        var random = new Random(seed);
        var tokens = Enumerable.Range(0, 300).Select(_ => random.Next(seed % 2 == 0 ? 50 : vocab)).ToArray(); // repeats, or mostly distinct
        var promptLength = 100;

        // Min-p: p ≥ minP · p_max, i.e. logit ≥ max + ln(minP).
        var minP = (float[])logits.Clone();
        new MinPProcessor(0.05f).Process(minP, Context(tokens));
        var max = logits.Max();
        var expectedMinP = logits.Select(l => l < max + MathF.Log(0.05f) ? float.NegativeInfinity : l).ToArray();
        Assert.Equal(expectedMinP, minP);

        // Repetition 1.3 over the whole sequence, then presence 0.4 + frequency 0.25 over the generated tokens' last 128, twice
        // in a row on the same processors (a processor's scratch left dirty by one step would change the next).
        var repetition = new RepetitionPenaltyProcessor(1.3f);
        var frequency = new FrequencyPenaltyProcessor(0.4f, 0.25f, 128, countsPrompt: false);
        for (var step = 0; step < 2; step++)
        {
            var actual = (float[])logits.Clone();
            repetition.Process(actual, Context(tokens, promptLength));
            frequency.Process(actual, Context(tokens, promptLength));
            var expected = (float[])logits.Clone();
            foreach (var id in tokens.Distinct()) expected[id] = expected[id] < 0 ? expected[id] * 1.3f : expected[id] / 1.3f;
            var window = tokens[promptLength..][^128..];
            foreach (var group in window.GroupBy(id => id)) expected[group.Key] -= 0.4f + 0.25f * group.Count();
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void ATypicalChainAtAQwenVocabularyAllocatesNothingPerStep()
    {
        const int vocab = 151_936;
        var logits = Logits(vocab, 3);
        var history = Enumerable.Range(0, 512).Select(i => (i * 7919) % vocab).ToArray();
        var pipeline = SamplingPipeline.Create(new GenerationOptions
        {
            Temperature = 0.8f, TopP = 0.95f, MinP = 0.05f, RepetitionPenalty = 1.1f, PresencePenalty = 0.2f, FrequencyPenalty = 0.2f,
        }, [1], null);
        var context = Context(history, 256);
        var scratch = new float[vocab];
        for (var i = 0; i < 3; i++)
        {
            logits.CopyTo(scratch, 0);
            pipeline.Choose(scratch, context);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 20; i++)
        {
            logits.CopyTo(scratch, 0);
            pipeline.Choose(scratch, context);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static int Kept(float[] logits) => logits.Count(l => !float.IsNegativeInfinity(l));
}
