namespace OnnxLM;

/// <summary>
/// Locally typical sampling (Meister et al. 2022; Hugging Face <c>TypicalLogitsWarper</c>): orders tokens by how far
/// their surprise −log p is from the distribution's entropy and keeps the closest ones until their probability
/// reaches <see cref="P"/> (at least one kept).
/// </summary>
public sealed class TypicalPProcessor : ILogitProcessor
{
    private double[] _probabilities = [];
    private float[] _distance = [];
    private int[] _order = [];

    /// <summary>Creates the processor.</summary>
    /// <param name="p">Mass to keep, in (0, 1].</param>
    public TypicalPProcessor(float p)
    {
        if (!(p > 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "TypicalP must be in (0, 1].");
        P = p;
    }

    /// <summary>The mass kept.</summary>
    public float P { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        if (P >= 1) return;
        var n = logits.Length;
        if (_order.Length != n) (_probabilities, _distance, _order) = (new double[n], new float[n], new int[n]);
        SamplingMath.Softmax(logits, _probabilities);
        double entropy = 0;
        for (var i = 0; i < n; i++)
        {
            if (_probabilities[i] > 0) entropy -= _probabilities[i] * Math.Log(_probabilities[i]);
        }

        // Only tokens with probability > 0 take part (after top-k that is a handful).
        var candidates = 0;
        for (var i = 0; i < n; i++)
        {
            if (_probabilities[i] <= 0) continue;
            _order[candidates] = i;
            _distance[candidates++] = (float)Math.Abs(-Math.Log(_probabilities[i]) - entropy);
        }

        Array.Sort(_distance, _order, 0, candidates);
        double cumulative = 0;
        var keep = candidates;
        for (var r = 0; r < candidates; r++)
        {
            cumulative += _probabilities[_order[r]];
            if (cumulative >= P)
            {
                keep = r + 1;
                break;
            }
        }

        for (var r = keep; r < candidates; r++) logits[_order[r]] = float.NegativeInfinity;
    }
}
