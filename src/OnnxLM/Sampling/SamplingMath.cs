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

    /// <summary>log(sum(exp(values))) accumulated in double, in index order.</summary>
    public static double LogSumExp(ReadOnlySpan<float> values)
    {
        double max = values[ArgMax(values)];
        if (double.IsNegativeInfinity(max))
        {
            return max;
        }

        double sum = 0;
        for (var i = 0; i < values.Length; i++)
        {
            sum += Math.Exp(values[i] - max);
        }

        return max + Math.Log(sum);
    }

    /// <summary>1 + the number of values strictly greater than values[index] (rank 1 = the argmax).</summary>
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

    /// <summary>After sorting by key, puts equal keys in ascending id order.</summary>
    public static void SortTiesById(float[] keys, int[] ids)
    {
        var start = 0;
        for (var i = 1; i <= keys.Length; i++)
        {
            if (i == keys.Length || keys[i] != keys[start])
            {
                if (i - start > 1)
                {
                    Array.Sort(ids, start, i - start);
                }

                start = i;
            }
        }
    }
}
