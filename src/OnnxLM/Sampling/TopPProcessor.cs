using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace OnnxLM.Sampling;

/// <summary>
/// Nucleus sampling (Holtzman et al. 2019; Hugging Face <c>TopPLogitsWarper</c>): keeps the most probable tokens
/// whose cumulative probability first reaches <see cref="P"/> (the token crossing the threshold included, at
/// least one kept) and masks the rest.
/// </summary>
/// <remarks>
/// The vocabulary is not sorted: one vectorized pass computes every weight exp(logit − max) and the mass above a few
/// weight thresholds, and only the tokens above the highest threshold that holds mass <see cref="P"/> are sorted and
/// walked (a few hundred of 150k at typical settings). Tokens below a threshold have a strictly lower logit than those
/// above, so the kept set is the one a full sort gives; when rounding leaves the walk short of <see cref="P"/>, every
/// finite token is sorted instead.
/// </remarks>
internal sealed class TopPProcessor : ILogitProcessor
{
    /// <summary>Weight thresholds, highest first: exp(−2), exp(−5), exp(−10), exp(−20) of the best token's weight.</summary>
    private static readonly double[] Thresholds = [Math.Exp(-2), Math.Exp(-5), Math.Exp(-10), Math.Exp(-20)];

    private int[] _order = [];
    private float[] _keys = [];
    private float[] _differences = [];
    private double[] _weights = [];

    /// <summary>Creates the processor.</summary>
    /// <param name="p">Cumulative probability in (0, 1].</param>
    public TopPProcessor(float p)
    {
        if (!(p > 0 && p <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "TopP must be in (0, 1].");
        }

        P = p;
    }

    /// <summary>The cumulative probability kept.</summary>
    public float P { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        if (P >= 1)
        {
            return;
        }

        var n = logits.Length;
        if (_order.Length != n)
        {
            (_order, _keys, _differences, _weights) = (new int[n], new float[n], new float[n], new double[n]);
        }

        var max = TensorPrimitives.Max(logits);
        if (float.IsNegativeInfinity(max) || float.IsNaN(max)) return;

        // Weights in float-then-double as the walk uses them: (double)(logit − max), exponentiated; −∞ gives 0.
        var weights = _weights.AsSpan(0, n);
        TensorPrimitives.Subtract(logits, max, _differences);
        SamplingMath.WidenMinus(_differences, 0, weights);
        TensorPrimitives.Exp(weights, weights);
        var total = SamplingMath.Sum(weights);

        Span<double> mass = stackalloc double[Thresholds.Length];
        MassAbove(weights, mass);
        for (var t = 0; t < Thresholds.Length; t++)
        {
            // A margin for the walk's rounding (it divides step by step); a short walk falls through to the next threshold.
            if (mass[t] < P * total * (1 + 1e-9)) continue;
            var count = Above(weights, Thresholds[t], _order);
            if (Keep(logits, count, total)) return;
        }

        Keep(logits, SamplingMath.Candidates(logits, _order), total, last: true);
    }

    /// <summary>
    /// Sorts the <paramref name="count"/> candidates in <see cref="_order"/> by descending logit (ascending id among equals),
    /// walks them and masks everything after the token that reaches <see cref="P"/>; returns false, masking nothing, when
    /// they do not reach it (unless they are every finite token: <paramref name="last"/>, which keeps them all).
    /// </summary>
    private bool Keep(Span<float> logits, int count, double total, bool last = false)
    {
        SamplingMath.SortByLogit(logits, _order, _keys, count);
        double cumulative = 0;
        var keep = -1;
        for (var r = 0; r < count; r++)
        {
            cumulative += _weights[_order[r]] / total;
            if (cumulative >= P)
            {
                keep = r + 1;
                break;
            }
        }

        if (keep < 0)
        {
            if (!last) return false;
            keep = count;
        }

        // Everything below the last kept logit goes; of the tokens tied with it, those ranked after it (higher ids).
        var boundary = logits[_order[keep - 1]];
        SamplingMath.MaskBelow(logits, boundary);
        for (var r = keep; r < count; r++)
        {
            if (logits[_order[r]] == boundary) logits[_order[r]] = float.NegativeInfinity;
        }

        return true;
    }

    /// <summary>The total weight at or above each of <see cref="Thresholds"/>, in one pass.</summary>
    private static void MassAbove(ReadOnlySpan<double> weights, Span<double> mass)
    {
        mass.Clear();
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var (a, b, c, d) = (Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero, Vector256<double>.Zero);
            var (ta, tb, tc, td) = (Vector256.Create(Thresholds[0]), Vector256.Create(Thresholds[1]), Vector256.Create(Thresholds[2]), Vector256.Create(Thresholds[3]));
            ref var start = ref MemoryMarshal.GetReference(weights);
            for (; i <= weights.Length - Vector256<double>.Count; i += Vector256<double>.Count)
            {
                var w = Vector256.LoadUnsafe(ref start, (nuint)i);
                if (Vector256.LessThanAll(w, td)) continue; // most of a large vocabulary
                a += Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(w, ta), w, Vector256<double>.Zero);
                b += Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(w, tb), w, Vector256<double>.Zero);
                c += Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(w, tc), w, Vector256<double>.Zero);
                d += Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(w, td), w, Vector256<double>.Zero);
            }

            (mass[0], mass[1], mass[2], mass[3]) = (Vector256.Sum(a), Vector256.Sum(b), Vector256.Sum(c), Vector256.Sum(d));
        }

        for (; i < weights.Length; i++)
        {
            for (var t = 0; t < Thresholds.Length; t++)
            {
                if (weights[i] >= Thresholds[t]) mass[t] += weights[i];
            }
        }
    }

    /// <summary>Writes the ids whose weight is at least <paramref name="threshold"/> into <paramref name="ids"/> (ascending) and returns how many.</summary>
    private static int Above(ReadOnlySpan<double> weights, double threshold, Span<int> ids)
    {
        var count = 0;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var limit = Vector256.Create(threshold);
            ref var start = ref MemoryMarshal.GetReference(weights);
            for (; i <= weights.Length - Vector256<double>.Count; i += Vector256<double>.Count)
            {
                var bits = Vector256.GreaterThanOrEqual(Vector256.LoadUnsafe(ref start, (nuint)i), limit).ExtractMostSignificantBits();
                while (bits != 0)
                {
                    ids[count++] = i + System.Numerics.BitOperations.TrailingZeroCount(bits);
                    bits &= bits - 1;
                }
            }
        }

        for (; i < weights.Length; i++)
        {
            if (weights[i] >= threshold) ids[count++] = i;
        }

        return count;
    }
}
