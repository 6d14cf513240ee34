using OnnxLM.Sampling;

namespace OnnxLM.Tests;

/// <summary>The vectorized helpers behind the samplers and scorers agree with plain loops, including at −∞, NaN, ties and odd lengths.</summary>
public sealed class SamplingMathTests
{
    public static TheoryData<int> Lengths => [1, 7, 8, 9, 31, 4096, 32003];

    private static float[] RandomLogits(int n, int seed, double maskedFraction = 0.3)
    {
        var random = new Random(seed);
        var logits = new float[n];
        for (var i = 0; i < n; i++)
        {
            // Coarse values so ties happen; some masked.
            logits[i] = random.NextDouble() < maskedFraction ? float.NegativeInfinity : MathF.Round((float)(random.NextDouble() * 20 - 10), 1);
        }

        return logits;
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void ArgMaxIsTheLowestIndexOfTheMaximum(int n)
    {
        var logits = RandomLogits(n, n, maskedFraction: 0);
        var expected = 0;
        for (var i = 1; i < n; i++) if (logits[i] > logits[expected]) expected = i;
        Assert.Equal(expected, SamplingMath.ArgMax(logits));

        if (n > 1)
        {
            logits[^1] = float.NaN; // NaN is never chosen over a number
            Assert.Equal(expected == n - 1 ? SamplingMath.ArgMax(logits.AsSpan(0, n - 1)) : expected, SamplingMath.ArgMax(logits));
        }
    }

    [Fact]
    public void ArgMaxTiesGoToTheLowestIdEvenAcrossSignedZeros()
    {
        Assert.Equal(3, SamplingMath.ArgMax([float.NegativeInfinity, -1, -2, 0f, 0f, -0f, -5, -6, -7, 0f]));
        Assert.Equal(1, SamplingMath.ArgMax([-1f, -0f, 0f]));
        Assert.Equal(0, SamplingMath.ArgMax([float.NegativeInfinity, float.NegativeInfinity]));
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void KthLargestMatchesSorting(int n)
    {
        var logits = RandomLogits(n, n + 1);
        var sorted = logits.OrderByDescending(v => v).ToArray();
        foreach (var k in new[] { 1, 2, 40, n }.Where(k => k <= n).Distinct())
        {
            Assert.Equal(sorted[k - 1], SamplingMath.KthLargest(logits, k, new float[k]));
        }
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void MaskBelowCandidatesAndSortAgreeWithPlainLoops(int n)
    {
        var logits = RandomLogits(n, n + 2);
        var masked = (float[])logits.Clone();
        SamplingMath.MaskBelow(masked, 1.5f);
        Assert.Equal(logits.Select(v => v < 1.5f ? float.NegativeInfinity : v), masked);

        var ids = new int[n];
        var count = SamplingMath.Candidates(masked, ids);
        Assert.Equal(Enumerable.Range(0, n).Where(i => !float.IsNegativeInfinity(masked[i])), ids[..count]);

        var order = new int[n];
        var finite = SamplingMath.SortDescending(logits, order, new float[n]);
        var expected = Enumerable.Range(0, n).Where(i => !float.IsNegativeInfinity(logits[i])).OrderByDescending(i => logits[i]).ThenBy(i => i);
        Assert.Equal(expected, order[..finite]);
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void RankCountsHigherValuesAndEqualOnesAtLowerIds(int n)
    {
        var logits = RandomLogits(n, n + 4);
        foreach (var index in new[] { 0, n / 3, n / 2, n - 1 }.Distinct())
        {
            var expected = 1 + Enumerable.Range(0, n).Count(i => logits[i] > logits[index] || (logits[i] == logits[index] && i < index));
            Assert.Equal(expected, SamplingMath.Rank(logits, index));
        }
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void SoftmaxAndLogSumExpMatchScalarDoubleArithmetic(int n)
    {
        var logits = RandomLogits(n, n + 3);
        logits[0] = 3; // at least one finite value
        var max = logits.Max();
        var sum = logits.Sum(v => Math.Exp((double)v - max));
        var probabilities = new double[n];
        SamplingMath.Softmax(logits, probabilities);
        for (var i = 0; i < n; i++)
        {
            Assert.Equal(Math.Exp((double)logits[i] - max) / sum, probabilities[i], 1e-14);
        }

        Assert.Equal(max + Math.Log(sum), SamplingMath.LogSumExp(logits), 1e-10);
        Assert.Equal(float.NegativeInfinity, SamplingMath.LogSumExp([float.NegativeInfinity, float.NegativeInfinity]));
    }
}
