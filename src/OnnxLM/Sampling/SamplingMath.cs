using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace OnnxLM.Sampling;

/// <summary>Shared numeric helpers for samplers and scorers.</summary>
internal static class SamplingMath
{
    /// <summary>Index of the largest value; the lowest index wins ties. NaN is never chosen over a number.</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        // Vectorized: the maximum, then the first position holding it (−0 and +0 compare equal, as in the scalar loop).
        var max = TensorPrimitives.Max(values);
        if (!float.IsNaN(max))
        {
            var i = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var target = Vector256.Create(max);
                ref var start = ref MemoryMarshal.GetReference(values);
                for (; i <= values.Length - Vector256<float>.Count; i += Vector256<float>.Count)
                {
                    var bits = Vector256.Equals(Vector256.LoadUnsafe(ref start, (nuint)i), target).ExtractMostSignificantBits();
                    if (bits != 0) return i + BitOperations.TrailingZeroCount(bits);
                }
            }

            for (; i < values.Length; i++)
            {
                if (values[i] == max) return i;
            }
        }

        var best = 0; // a NaN is present: the scalar loop skips it
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

    /// <summary>Sets every value below <paramref name="threshold"/> to −∞ (vectorized).</summary>
    public static void MaskBelow(Span<float> logits, float threshold)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var limit = Vector256.Create(threshold);
            var masked = Vector256.Create(float.NegativeInfinity);
            ref var start = ref MemoryMarshal.GetReference(logits);
            for (; i <= logits.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var v = Vector256.LoadUnsafe(ref start, (nuint)i);
                Vector256.ConditionalSelect(Vector256.LessThan(v, limit), masked, v).StoreUnsafe(ref start, (nuint)i);
            }
        }

        for (; i < logits.Length; i++)
        {
            if (logits[i] < threshold) logits[i] = float.NegativeInfinity;
        }
    }

    /// <summary>Writes the ids whose logit is not −∞ into <paramref name="ids"/> in ascending order and returns how many.</summary>
    public static int Candidates(ReadOnlySpan<float> logits, Span<int> ids)
    {
        var count = 0;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var masked = Vector256.Create(float.NegativeInfinity);
            ref var start = ref MemoryMarshal.GetReference(logits);
            for (; i <= logits.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var bits = ~Vector256.Equals(Vector256.LoadUnsafe(ref start, (nuint)i), masked).ExtractMostSignificantBits() & 0xFF;
                while (bits != 0)
                {
                    ids[count++] = i + BitOperations.TrailingZeroCount(bits);
                    bits &= bits - 1;
                }
            }
        }

        for (; i < logits.Length; i++)
        {
            if (!float.IsNegativeInfinity(logits[i])) ids[count++] = i;
        }

        return count;
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
        WidenMinus(values, max, e);
        TensorPrimitives.Exp(e, e);
        return max + Math.Log(Sum(e));
    }

    /// <summary>log(sum(exp(values))) of double values, using <paramref name="scratch"/> (as long as <paramref name="values"/>).</summary>
    public static double LogSumExp(ReadOnlySpan<double> values, Span<double> scratch)
    {
        var max = TensorPrimitives.Max(values);
        TensorPrimitives.Subtract(values, max, scratch);
        TensorPrimitives.Exp(scratch, scratch);
        return max + Math.Log(Sum(scratch));
    }

    /// <summary>destination[i] = (double)values[i] − subtrahend, in one vectorized pass.</summary>
    public static void WidenMinus(ReadOnlySpan<float> values, double subtrahend, Span<double> destination)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var minus = Vector256.Create(subtrahend);
            ref var source = ref MemoryMarshal.GetReference(values);
            ref var target = ref MemoryMarshal.GetReference(destination);
            for (; i <= values.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var (lower, upper) = Vector256.Widen(Vector256.LoadUnsafe(ref source, (nuint)i));
                (lower - minus).StoreUnsafe(ref target, (nuint)i);
                (upper - minus).StoreUnsafe(ref target, (nuint)(i + Vector256<double>.Count));
            }
        }

        for (; i < values.Length; i++)
        {
            destination[i] = values[i] - subtrahend;
        }
    }

    /// <summary>The sum of <paramref name="values"/> with vector accumulators (a fixed order on a given machine).</summary>
    public static double Sum(ReadOnlySpan<double> values)
    {
        var i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && values.Length >= 2 * Vector256<double>.Count)
        {
            var (a, b) = (Vector256<double>.Zero, Vector256<double>.Zero);
            ref var start = ref MemoryMarshal.GetReference(values);
            for (; i <= values.Length - 2 * Vector256<double>.Count; i += 2 * Vector256<double>.Count)
            {
                a += Vector256.LoadUnsafe(ref start, (nuint)i);
                b += Vector256.LoadUnsafe(ref start, (nuint)(i + Vector256<double>.Count));
            }

            sum = Vector256.Sum(a + b);
        }

        for (; i < values.Length; i++)
        {
            sum += values[i];
        }

        return sum;
    }

    [ThreadStatic]
    private static int[]? t_candidates;

    /// <summary>A per-thread scratch array of at least <paramref name="length"/> ids.</summary>
    public static int[] CandidateScratch(int length) =>
        t_candidates is { } ids && ids.Length >= length ? ids : t_candidates = new int[length];

    /// <summary>
    /// Writes softmax(logits) into <paramref name="probabilities"/> (double precision; −∞ gives 0) and returns the max
    /// logit. Vectorized over the whole vocabulary, or over the finite candidates only once most are masked.
    /// </summary>
    public static double Softmax(ReadOnlySpan<float> logits, Span<double> probabilities)
    {
        double max = logits[ArgMax(logits)];
        var p = probabilities[..logits.Length];
        var ids = CandidateScratch(logits.Length);
        var count = Candidates(logits, ids);
        if (count > logits.Length / 4)
        {
            WidenMinus(logits, max, p);
            TensorPrimitives.Exp(p, p);
            TensorPrimitives.Multiply(p, 1 / Sum(p), p);
            return max;
        }

        p.Clear();
        double sum = 0;
        for (var k = 0; k < count; k++)
        {
            sum += p[ids[k]] = Math.Exp(logits[ids[k]] - max);
        }

        for (var k = 0; k < count; k++)
        {
            p[ids[k]] /= sum;
        }

        return max;
    }

    /// <summary>1 + the number of values ranked above values[index] (higher value, or equal value with a lower index).</summary>
    public static int Rank(ReadOnlySpan<float> values, int index)
    {
        var value = values[index];
        var rank = 1;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var target = Vector256.Create(value);
            ref var start = ref MemoryMarshal.GetReference(values);
            for (; i <= values.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var v = Vector256.LoadUnsafe(ref start, (nuint)i);
                var above = Vector256.GreaterThan(v, target).ExtractMostSignificantBits();
                var equal = Vector256.Equals(v, target).ExtractMostSignificantBits();
                // Equal values count only at lower indices.
                var lower = index - i >= Vector256<float>.Count ? 0xFFu : index <= i ? 0u : (1u << (index - i)) - 1;
                rank += BitOperations.PopCount(above | (equal & lower));
            }
        }

        for (; i < values.Length; i++)
        {
            if (values[i] > value || (values[i] == value && i < index))
            {
                rank++;
            }
        }

        return rank;
    }

    /// <summary>The k-th largest value (1-based) of <paramref name="values"/>; <paramref name="heap"/> holds k floats of scratch.</summary>
    public static float KthLargest(ReadOnlySpan<float> values, int k, Span<float> heap)
    {
        // A min-heap of the k largest seen so far: most values fail the single comparison with its root.
        heap = heap[..k];
        values[..k].CopyTo(heap);
        for (var h = k / 2 - 1; h >= 0; h--) SiftDown(heap, h);
        var i = k;
        if (Vector256.IsHardwareAccelerated)
        {
            // Skip whole vectors with nothing above the root: once the heap holds large values, nearly all of them.
            ref var start = ref MemoryMarshal.GetReference(values);
            for (; i <= values.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                if (Vector256.GreaterThanAny(Vector256.LoadUnsafe(ref start, (nuint)i), Vector256.Create(heap[0])))
                {
                    for (var j = i; j < i + Vector256<float>.Count; j++) Offer(heap, values[j]);
                }
            }
        }

        for (; i < values.Length; i++) Offer(heap, values[i]);

        return heap[0];

        static void Offer(Span<float> heap, float value)
        {
            if (value > heap[0])
            {
                heap[0] = value;
                SiftDown(heap, 0);
            }
        }

        static void SiftDown(Span<float> heap, int i)
        {
            while (true)
            {
                var smallest = i;
                var (left, right) = (2 * i + 1, 2 * i + 2);
                if (left < heap.Length && heap[left] < heap[smallest]) smallest = left;
                if (right < heap.Length && heap[right] < heap[smallest]) smallest = right;
                if (smallest == i) return;
                (heap[i], heap[smallest]) = (heap[smallest], heap[i]);
                i = smallest;
            }
        }
    }

    /// <summary>
    /// The ids whose logit is finite, ordered by descending logit (ascending id among equals), into the start of
    /// <paramref name="order"/>; returns how many. Only those are sorted, so after top-k the sort is tiny.
    /// </summary>
    public static int SortDescending(ReadOnlySpan<float> logits, int[] order, float[] keys)
    {
        var finite = Candidates(logits, order);
        SortByLogit(logits, order, keys, finite);
        return finite;
    }

    /// <summary>Sorts the first <paramref name="count"/> ids of <paramref name="order"/> by descending logit, ascending id among equals.</summary>
    public static void SortByLogit(ReadOnlySpan<float> logits, int[] order, float[] keys, int count)
    {
        for (var i = 0; i < count; i++)
        {
            keys[i] = -logits[order[i]];
        }

        Array.Sort(keys, order, 0, count);
        var start = 0;
        for (var i = 1; i <= count; i++)
        {
            if (i == count || keys[i] != keys[start])
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
        var ids = CandidateScratch(logits.Length);
        var count = Candidates(logits, ids); // masked ids stay masked: only the candidates are asked
        for (var k = 0; k < count; k++)
        {
            var i = ids[k];
            if (i != best && !keep(i))
            {
                logits[i] = float.NegativeInfinity;
            }
        }
    }

    /// <summary>Natural-log probability of <paramref name="id"/> under softmax(logits), vectorized in float (for reporting).</summary>
    public static float FastLogProb(ReadOnlySpan<float> logits, int id, Span<float> scratch)
    {
        var (max, logSum) = LogSoftmaxTerms(logits, scratch);
        return LogProbOf(logits, id, max, logSum);
    }

    /// <summary>The two terms of log-softmax(logits), in float: the largest logit and log Σ exp(logit − largest).</summary>
    public static (float Max, float LogSum) LogSoftmaxTerms(ReadOnlySpan<float> logits, Span<float> scratch)
    {
        var max = TensorPrimitives.Max(logits);
        TensorPrimitives.Subtract(logits, max, scratch);
        TensorPrimitives.Exp(scratch, scratch);
        return (max, MathF.Log(TensorPrimitives.Sum(scratch)));
    }

    /// <summary>
    /// log-softmax(logits)[id] from <see cref="LogSoftmaxTerms"/>: one expression for every id, so the chosen token and its
    /// listed alternatives get bit-identical values.
    /// </summary>
    public static float LogProbOf(ReadOnlySpan<float> logits, int id, float max, float logSum) => logits[id] - max - logSum;

    /// <summary>
    /// The <paramref name="count"/> ids of largest logit, best first (ties: lower id first); NaN and −∞ never count.
    /// </summary>
    public static int[] TopIds(ReadOnlySpan<float> logits, int count)
    {
        var top = new int[Math.Min(count, logits.Length)];
        var filled = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            var x = logits[i];
            if (float.IsNaN(x) || float.IsNegativeInfinity(x) || filled == top.Length && x <= logits[top[filled - 1]]) continue;
            var at = filled < top.Length ? filled++ : filled - 1;
            while (at > 0 && x > logits[top[at - 1]])
            {
                top[at] = top[at - 1];
                at--;
            }

            top[at] = i;
        }

        return filled == top.Length ? top : top[..filled];
    }
}
