namespace OnnxLM;

/// <summary>
/// Draws a token with probability softmax(logits). The softmax and the cumulative walk are computed in a
/// fixed scalar order in double precision, so a seed yields the same tokens on every machine.
/// </summary>
public sealed class CategoricalPicker : ITokenPicker
{
    /// <summary>The shared instance (the picker has no state; randomness comes from the context).</summary>
    public static CategoricalPicker Instance { get; } = new();

    /// <inheritdoc />
    public int Pick(ReadOnlySpan<float> logits, SamplingContext context)
    {
        var best = SamplingMath.ArgMax(logits);
        double max = logits[best];
        double total = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            total += Math.Exp(logits[i] - max);
        }

        var target = context.Random.NextDouble() * total;
        double cumulative = 0;
        var last = best;
        for (var i = 0; i < logits.Length; i++)
        {
            if (float.IsNegativeInfinity(logits[i]))
            {
                continue;
            }

            cumulative += Math.Exp(logits[i] - max);
            last = i;
            if (cumulative > target)
            {
                return i;
            }
        }

        return last;
    }
}
