using OnnxLM.Sampling;

namespace OnnxLM.Tests;

/// <summary>Sampled frequencies follow the processed distribution (Pearson chi-square, fixed seed).</summary>
public sealed class SamplingStatisticsTests
{
    [Theory]
    [InlineData(1.0f, 0, 1.0f)]
    [InlineData(0.7f, 0, 1.0f)]
    [InlineData(1.3f, 4, 1.0f)]
    [InlineData(1.0f, 0, 0.8f)]
    public void CategoricalSamplesMatchTheProcessedDistribution(float temperature, int topK, float topP)
    {
        float[] logits = [2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -3.0f];
        var options = new GenerationOptions { Temperature = temperature, TopK = topK, TopP = topP };
        var pipeline = SamplingPipeline.Create(options, [], null);
        var context = new SamplingContext(new Random(20261125), 0);

        // Expected distribution computed here from the definitions, independently of the processors.
        var scaled = logits.Select(l => (double)l / temperature).ToArray();
        var keep = Enumerable.Range(0, logits.Length).ToHashSet();
        if (topK > 0) keep = keep.OrderByDescending(i => scaled[i]).Take(topK).ToHashSet();
        var z = keep.Sum(i => Math.Exp(scaled[i]));
        if (topP < 1)
        {
            double cumulative = 0;
            var kept = new HashSet<int>();
            foreach (var i in keep.OrderByDescending(i => scaled[i]))
            {
                kept.Add(i);
                cumulative += Math.Exp(scaled[i]) / z;
                if (cumulative >= topP) break;
            }

            keep = kept;
            z = keep.Sum(i => Math.Exp(scaled[i]));
        }

        var expected = Enumerable.Range(0, logits.Length).Select(i => keep.Contains(i) ? Math.Exp(scaled[i]) / z : 0).ToArray();

        const int draws = 20000;
        var counts = new int[logits.Length];
        for (var n = 0; n < draws; n++)
        {
            var copy = (float[])logits.Clone();
            counts[pipeline.Choose(copy, context)]++;
        }

        double chi2 = 0;
        var dof = -1;
        for (var i = 0; i < logits.Length; i++)
        {
            if (expected[i] == 0)
            {
                Assert.Equal(0, counts[i]); // masked tokens are never drawn
                continue;
            }

            var e = expected[i] * draws;
            chi2 += (counts[i] - e) * (counts[i] - e) / e;
            dof++;
        }

        // 99.9th percentile of chi-square with ≤ 7 degrees of freedom is 24.3.
        Assert.True(chi2 < 24.3, $"chi-square {chi2:F2} with {dof} degrees of freedom");
    }

    [Fact]
    public void SameSeedSameDraws()
    {
        float[] logits = [0.1f, 0.2f, 0.3f, 0.4f];
        int[] Draw(int seed)
        {
            var pipeline = SamplingPipeline.Create(new GenerationOptions { Temperature = 1 }, [], null);
            var context = new SamplingContext(new Random(seed), 0);
            return Enumerable.Range(0, 50).Select(_ => pipeline.Choose((float[])logits.Clone(), context)).ToArray();
        }

        Assert.Equal(Draw(5), Draw(5));
        Assert.NotEqual(Draw(5), Draw(6));
    }
}
