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
/// The vocabulary is not sorted. One vectorized pass computes every candidate's weight w = exp(logit − max); then a bisection over a
/// weight threshold (each step one vectorized pass summing the mass and counting the tokens at or above it) narrows the
/// cut to a band of a few hundred tokens: the tokens above the band hold less than <see cref="P"/> of the mass, so the
/// walk keeps them all, and the tokens at or above its floor hold more, so the walk stops inside it. Only the band is
/// sorted and walked, from the mass above it. Tokens of a lower weight have a strictly lower logit, so the kept set is
/// the one a full sort gives, unless the walk lands within rounding (1e-9) of <see cref="P"/>, where the sums' different
/// orders could disagree: then every finite token is sorted and walked as a full sort does.
/// </remarks>
internal sealed class TopPProcessor : ILogitProcessor
{
    /// <summary>The band is sorted once it holds at most this many tokens.</summary>
    private const int BandSize = 256;

    /// <summary>Relative margin between the walk's sums and <see cref="P"/> below which the full sort decides.</summary>
    private const double Margin = 1e-9;

    private int[] _order = [];      // the finite candidates, ascending ids
    private int[] _band = [];
    private float[] _keys = [];
    private float[] _differences = [];
    private double[] _weights = [];  // the candidates' weights, aligned with _order

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
            (_order, _band, _keys, _differences, _weights) = (new int[n], new int[n], new float[n], new float[n], new double[n]);
        }

        var count = SamplingMath.Candidates(logits, _order);
        if (count <= BandSize)
        {
            FullSort(logits, count); // after top-k or min-p: a handful
            return;
        }

        var max = TensorPrimitives.Max(logits);
        if (float.IsNaN(max)) return;

        // The candidates' weights, (double)(logit − max) exponentiated (gathered: −∞ would send exp down its slow path).
        var differences = _differences.AsSpan(0, count);
        for (var k = 0; k < count; k++) differences[k] = logits[_order[k]] - max;
        var weights = _weights.AsSpan(0, count);
        SamplingMath.WidenMinus(differences, 0, weights);
        TensorPrimitives.Exp(weights, weights);
        var total = SamplingMath.Sum(weights);
        var target = P * total;

        // Bisection on ln(threshold): "high" holds too little mass to reach p (all kept), "low" enough (the cut is above it).
        double high = 1, low = double.Epsilon;
        var (highMass, highCount) = (0.0, 0); // nothing weighs more than the best token's 1
        var (lowMass, lowCount) = MassAbove(weights, low);
        if (lowMass < target * (1 + Margin))
        {
            FullSort(logits, count);
            return;
        }

        for (var step = 0; step < 64 && lowCount - highCount > BandSize; step++)
        {
            var middle = Math.Sqrt(high) * Math.Sqrt(low); // geometric: halves the interval of ln(weight), without underflow
            if (!(middle > low && middle < high)) break; // ties: the band cannot narrow further
            var (mass, above) = MassAbove(weights, middle);
            if (mass < target * (1 - Margin)) (high, highMass, highCount) = (middle, mass, above);
            else if (mass >= target * (1 + Margin)) (low, lowMass, lowCount) = (middle, mass, above);
            else break; // p falls within rounding of this threshold's mass: let the full sort decide
        }

        // The band: weights in [low, high) (or [low, 1] when nothing lies above it); walked from the mass above it.
        var bandCount = Band(weights, _order, low, highCount == 0 ? double.PositiveInfinity : high, _band);
        SamplingMath.SortByLogit(logits, _band, _keys, bandCount);
        var cumulative = highMass / total;
        for (var r = 0; r < bandCount; r++)
        {
            // Weights recomputed one by one may differ from the vectorized ones in the last bit: within the margin.
            var next = cumulative + Math.Exp((double)(logits[_band[r]] - max)) / total;
            if (Math.Abs(next - P) <= Margin || Math.Abs(cumulative - P) <= Margin) break; // too close to call
            cumulative = next;
            if (cumulative >= P)
            {
                Mask(logits, _band, r + 1, bandCount);
                return;
            }
        }

        FullSort(logits, count);
    }

    /// <summary>
    /// The <paramref name="count"/> candidates in <see cref="_order"/> sorted and walked in rank order, with their weights
    /// exponentiated in that order: a full sort, for a handful of candidates or when rounding could tell the band apart from it.
    /// </summary>
    private void FullSort(Span<float> logits, int count)
    {
        if (count == 0) return;
        SamplingMath.SortByLogit(logits, _order, _keys, count);
        var max = logits[_order[0]];
        var weights = _weights.AsSpan(0, count);
        for (var r = 0; r < count; r++) weights[r] = logits[_order[r]] - max;
        TensorPrimitives.Exp(weights, weights);
        var total = SamplingMath.Sum(weights);
        var keep = count;
        double cumulative = 0;
        for (var r = 0; r < count; r++)
        {
            cumulative += weights[r] / total;
            if (cumulative >= P)
            {
                keep = r + 1;
                break;
            }
        }

        if (keep > 0) Mask(logits, _order, keep, count);
    }

    /// <summary>Masks every token ranked after the first <paramref name="keep"/> of the <paramref name="count"/> sorted in <paramref name="ranked"/> and every token below them.</summary>
    private static void Mask(Span<float> logits, int[] ranked, int keep, int count)
    {
        // Everything below the last kept logit goes; of the tokens tied with it, those ranked after it (higher ids).
        var boundary = logits[ranked[keep - 1]];
        SamplingMath.MaskBelow(logits, boundary);
        for (var r = keep; r < count; r++)
        {
            if (logits[ranked[r]] == boundary) logits[ranked[r]] = float.NegativeInfinity;
        }
    }

    /// <summary>The total weight and the number of tokens at or above <paramref name="threshold"/>, in one pass.</summary>
    private static (double Mass, int Count) MassAbove(ReadOnlySpan<double> weights, double threshold)
    {
        double mass = 0;
        var count = 0;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var (sum, counts) = (Vector256<double>.Zero, Vector256<long>.Zero);
            var limit = Vector256.Create(threshold);
            ref var start = ref MemoryMarshal.GetReference(weights);
            for (; i <= weights.Length - Vector256<double>.Count; i += Vector256<double>.Count)
            {
                var w = Vector256.LoadUnsafe(ref start, (nuint)i);
                var above = Vector256.GreaterThanOrEqual(w, limit);
                sum += Vector256.ConditionalSelect(above, w, Vector256<double>.Zero);
                counts -= above.AsInt64(); // all-ones lanes are −1
            }

            mass = Vector256.Sum(sum);
            count = (int)Vector256.Sum(counts);
        }

        for (; i < weights.Length; i++)
        {
            if (weights[i] >= threshold)
            {
                mass += weights[i];
                count++;
            }
        }

        return (mass, count);
    }

    /// <summary>
    /// Writes the ids (from <paramref name="ids"/>, aligned with <paramref name="weights"/>) whose weight is in
    /// [<paramref name="low"/>, <paramref name="high"/>) into <paramref name="band"/> and returns how many.
    /// </summary>
    private static int Band(ReadOnlySpan<double> weights, int[] ids, double low, double high, Span<int> band)
    {
        var count = 0;
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var (floor, ceiling) = (Vector256.Create(low), Vector256.Create(high));
            ref var start = ref MemoryMarshal.GetReference(weights);
            for (; i <= weights.Length - Vector256<double>.Count; i += Vector256<double>.Count)
            {
                var w = Vector256.LoadUnsafe(ref start, (nuint)i);
                var bits = (Vector256.GreaterThanOrEqual(w, floor) & Vector256.LessThan(w, ceiling)).ExtractMostSignificantBits();
                while (bits != 0)
                {
                    band[count++] = ids[i + System.Numerics.BitOperations.TrailingZeroCount(bits)];
                    bits &= bits - 1;
                }
            }
        }

        for (; i < weights.Length; i++)
        {
            if (weights[i] >= low && weights[i] < high) band[count++] = ids[i];
        }

        return count;
    }
}
