using System.Numerics.Tensors;

namespace OnnxLM;

/// <summary>Shared numeric helpers for samplers and scorers.</summary>
internal static class SamplingMath
{
    /// <summary>Index of the largest value; the lowest index wins ties. NaN is never chosen over a number.</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        var bestValue = float.NegativeInfinity;
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] > bestValue)
            {
                bestValue = values[i];
                best = i;
            }
        }

        return best;
    }

    [ThreadStatic]
    private static double[]? t_logSumExpScratch;

    /// <summary>
    /// log(sum(exp(values))) in double precision: the values are widened to double and exponentiated with vectorized
    /// double-precision exp (within an ulp or so of <see cref="Math.Exp(double)"/>), several times faster than a scalar loop.
    /// </summary>
    public static double LogSumExp(ReadOnlySpan<float> values)
    {
        double max = TensorPrimitives.Max(values); // NaN when any value is NaN, and so is the result
        if (double.IsNegativeInfinity(max) || double.IsNaN(max))
        {
            return max;
        }

        var scratch = t_logSumExpScratch is { } s && s.Length >= values.Length ? s : t_logSumExpScratch = new double[values.Length];
        var e = scratch.AsSpan(0, values.Length);
        TensorPrimitives.ConvertChecked(values, e);
        TensorPrimitives.Subtract(e, max, e);
        TensorPrimitives.Exp(e, e);
        return max + Math.Log(TensorPrimitives.Sum<double>(e));
    }

    /// <summary>Writes softmax(logits) into <paramref name="probabilities"/> (double, index order) and returns the max logit.</summary>
    public static double Softmax(ReadOnlySpan<float> logits, Span<double> probabilities)
    {
        double max = logits[ArgMax(logits)];
        double sum = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            var e = float.IsNegativeInfinity(logits[i]) ? 0 : Math.Exp(logits[i] - max);
            probabilities[i] = e;
            sum += e;
        }

        for (var i = 0; i < logits.Length; i++)
        {
            probabilities[i] /= sum;
        }

        return max;
    }

    /// <summary>1 + the number of values ranked above values[index] (higher value, or equal value with a lower index).</summary>
    public static int Rank(ReadOnlySpan<float> values, int index)
    {
        var value = values[index];
        var rank = 1;
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] > value || (values[i] == value && i < index))
            {
                rank++;
            }
        }

        return rank;
    }

    /// <summary>The k-th largest value (1-based) of <paramref name="scratch"/>, which is reordered.</summary>
    public static float KthLargest(Span<float> scratch, int k)
    {
        scratch.Sort();
        return scratch[^k];
    }

    /// <summary>Ids ordered by descending logit (ascending id among equals) into <paramref name="order"/>.</summary>
    public static void SortDescending(ReadOnlySpan<float> logits, int[] order, float[] keys)
    {
        for (var i = 0; i < logits.Length; i++)
        {
            order[i] = i;
            keys[i] = -logits[i];
        }

        Array.Sort(keys, order, 0, logits.Length);
        var start = 0;
        for (var i = 1; i <= logits.Length; i++)
        {
            if (i == logits.Length || keys[i] != keys[start])
            {
                if (i - start > 1)
                {
                    Array.Sort(order, start, i - start);
                }

                start = i;
            }
        }
    }

    /// <summary>Masks every id whose <paramref name="keep"/> is false with -∞, but never all of them: the best stays.</summary>
    public static void MaskAllBut(Span<float> logits, Func<int, bool> keep)
    {
        var best = ArgMax(logits);
        for (var i = 0; i < logits.Length; i++)
        {
            if (i != best && !keep(i))
            {
                logits[i] = float.NegativeInfinity;
            }
        }
    }

    /// <summary>Natural-log probability of <paramref name="id"/> under softmax(logits), vectorized in float (for reporting).</summary>
    public static float FastLogProb(ReadOnlySpan<float> logits, int id, Span<float> scratch)
    {
        var max = TensorPrimitives.Max(logits);
        TensorPrimitives.Subtract(logits, max, scratch);
        TensorPrimitives.Exp(scratch, scratch);
        return logits[id] - max - MathF.Log(TensorPrimitives.Sum(scratch));
    }
}
