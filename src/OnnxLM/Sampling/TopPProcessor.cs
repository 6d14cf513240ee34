using System.Numerics.Tensors;

namespace OnnxLM.Sampling;

/// <summary>
/// Nucleus sampling (Holtzman et al. 2019; Hugging Face <c>TopPLogitsWarper</c>): keeps the most probable tokens
/// whose cumulative probability first reaches <see cref="P"/> (the token crossing the threshold included, at
/// least one kept) and masks the rest.
/// </summary>
internal sealed class TopPProcessor : ILogitProcessor
{
    private int[] _order = [];
    private float[] _keys = [];
    private double[] _probabilities = [];

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
            (_order, _keys, _probabilities) = (new int[n], new float[n], new double[n]);
        }

        // Probabilities of the finite candidates only, indexed by rank (after top-k that is a handful of exps).
        var finite = SamplingMath.SortDescending(logits, _order, _keys);
        if (finite == 0) return;
        var weights = _probabilities.AsSpan(0, finite);
        float max = logits[_order[0]];
        for (var r = 0; r < finite; r++) weights[r] = logits[_order[r]] - max;
        TensorPrimitives.Exp(weights, weights);
        var total = SamplingMath.Sum(weights);
        double cumulative = 0;
        var keep = finite;
        for (var r = 0; r < finite; r++)
        {
            cumulative += weights[r] / total;
            if (cumulative >= P)
            {
                keep = r + 1;
                break;
            }
        }

        for (var r = keep; r < finite; r++)
        {
            logits[_order[r]] = float.NegativeInfinity;
        }
    }
}
