using System.Numerics.Tensors;

namespace OnnxLM;

/// <summary>
/// Draws a token with probability softmax(logits), in double precision, walking the candidates in id order: a seed
/// yields the same tokens on every run (across CPU types, vectorized exp may differ in the last bit, which can
/// change a draw only when the random point falls within about 1e-16 of a boundary).
/// </summary>
public sealed class CategoricalPicker : ITokenPicker
{
    [ThreadStatic]
    private static int[]? t_ids;

    [ThreadStatic]
    private static double[]? t_weights;

    /// <summary>The shared instance (the picker keeps no state between calls; randomness comes from the context).</summary>
    public static CategoricalPicker Instance { get; } = new();

    /// <inheritdoc />
    public int Pick(ReadOnlySpan<float> logits, SamplingContext context)
    {
        var ids = t_ids is { } cached && cached.Length >= logits.Length ? cached : t_ids = new int[logits.Length];
        var buffer = t_weights is { } w && w.Length >= logits.Length ? w : t_weights = new double[logits.Length];

        // Weights exp(logit − max) of the finite candidates in id order (vectorized double precision), then one walk.
        var count = SamplingMath.Candidates(logits, ids);
        if (count == 0)
        {
            return SamplingMath.ArgMax(logits);
        }

        var max = float.NegativeInfinity;
        for (var i = 0; i < count; i++) max = Math.Max(max, logits[ids[i]]);
        var weights = buffer.AsSpan(0, count);
        for (var i = 0; i < count; i++) weights[i] = logits[ids[i]] - max;
        TensorPrimitives.Exp(weights, weights);
        var target = context.Random.NextDouble() * TensorPrimitives.Sum<double>(weights);
        double cumulative = 0;
        for (var i = 0; i < count; i++)
        {
            cumulative += weights[i];
            if (cumulative > target)
            {
                return ids[i];
            }
        }

        return ids[count - 1];
    }
}
