using System.Numerics.Tensors;

namespace OnnxLM.Sampling;

/// <summary>
/// Draws a token with probability softmax(logits), in double precision, walking the candidates in id order: a seed
/// yields the same tokens on every run (across CPU types, vectorized exp may differ in the last bit, which can
/// change a draw only when the random point falls within about 1e-16 of a boundary).
/// </summary>
internal sealed class CategoricalPicker : ITokenPicker
{
    [ThreadStatic]
    private static double[]? t_weights;

    /// <summary>The shared instance (the picker keeps no state between calls; randomness comes from the context).</summary>
    public static CategoricalPicker Instance { get; } = new();

    /// <inheritdoc />
    public int Pick(ReadOnlySpan<float> logits, SamplingContext context)
    {
        var ids = SamplingMath.CandidateScratch(logits.Length);
        var buffer = t_weights is { } w && w.Length >= logits.Length ? w : t_weights = new double[logits.Length];

        // Weights exp(logit − max) in id order (vectorized double precision), then one walk. After truncation (top-k,
        // top-p, ...) only the finite candidates are gathered; with most of the vocabulary alive, all of it is used.
        var count = SamplingMath.Candidates(logits, ids);
        if (count == 0)
        {
            return SamplingMath.ArgMax(logits);
        }

        Span<double> weights;
        var dense = count > logits.Length / 4;
        if (dense)
        {
            count = logits.Length;
            weights = buffer.AsSpan(0, count);
            SamplingMath.WidenMinus(logits, TensorPrimitives.Max(logits), weights);
        }
        else
        {
            var max = float.NegativeInfinity;
            for (var i = 0; i < count; i++) max = Math.Max(max, logits[ids[i]]);
            weights = buffer.AsSpan(0, count);
            for (var i = 0; i < count; i++) weights[i] = logits[ids[i]] - max;
        }

        TensorPrimitives.Exp(weights, weights); // −∞ gives 0, never chosen by the walk below
        var target = context.Random.NextDouble() * SamplingMath.Sum(weights);
        double cumulative = 0;
        var last = 0;
        for (var i = 0; i < count; i++)
        {
            if (weights[i] == 0) continue;
            cumulative += weights[i];
            last = i;
            if (cumulative > target) break;
        }

        return dense ? last : ids[last];
    }
}
