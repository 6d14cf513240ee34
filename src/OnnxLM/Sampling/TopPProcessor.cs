namespace OnnxLM;

/// <summary>
/// Nucleus sampling: keeps the most probable tokens whose cumulative probability first reaches
/// <see cref="P"/> (the token that crosses the threshold included, at least one kept) and masks the rest.
/// </summary>
public sealed class TopPProcessor : ILogitProcessor
{
    private int[] _order = [];
    private float[] _keys = [];

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
            _order = new int[n];
            _keys = new float[n];
        }

        // Sort ids by descending logit (ties by ascending id, so the cut is deterministic).
        for (var i = 0; i < n; i++)
        {
            _order[i] = i;
            _keys[i] = -logits[i];
        }

        Array.Sort(_keys, _order);
        SamplingMath.SortTiesById(_keys, _order);

        var max = logits[_order[0]];
        double total = 0;
        for (var i = 0; i < n; i++)
        {
            total += Math.Exp(logits[i] - max);
        }

        double cumulative = 0;
        var keep = n;
        for (var r = 0; r < n; r++)
        {
            cumulative += Math.Exp(logits[_order[r]] - max) / total;
            if (cumulative >= P)
            {
                keep = r + 1;
                break;
            }
        }

        for (var r = keep; r < n; r++)
        {
            logits[_order[r]] = float.NegativeInfinity;
        }
    }
}
