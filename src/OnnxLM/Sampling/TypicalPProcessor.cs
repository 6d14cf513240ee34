using System.Numerics.Tensors;

namespace OnnxLM.Sampling;

/// <summary>
/// Locally typical sampling (Meister et al. 2022; Hugging Face <c>TypicalLogitsWarper</c>): orders tokens by how far
/// their surprise −log p is from the distribution's entropy and keeps the closest ones until their probability
/// reaches <see cref="P"/> (at least one kept).
/// </summary>
internal sealed class TypicalPProcessor : ILogitProcessor
{
    private int[] _ids = [];
    private double[] _probabilities = [];
    private double[] _logProbabilities = [];
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
        if (_ids.Length != n) (_ids, _probabilities, _logProbabilities, _distance, _order) = (new int[n], new double[n], new double[n], new float[n], new int[n]);

        // The candidates (finite logits) with their probabilities and log-probabilities, vectorized in double.
        var count = SamplingMath.Candidates(logits, _ids);
        if (count <= 1) return;
        var logp = _logProbabilities.AsSpan(0, count);
        var p = _probabilities.AsSpan(0, count);
        for (var k = 0; k < count; k++) logp[k] = logits[_ids[k]];
        var logSumExp = SamplingMath.LogSumExp(logp, p);
        TensorPrimitives.Subtract(logp, logSumExp, logp);
        TensorPrimitives.Exp(logp, p);
        var entropy = -TensorPrimitives.Dot<double>(p, logp);

        // Only the closest tokens can be kept: grow a distance bound until the tokens within it hold mass P, then sort
        // just those (the kept set is a prefix of the full order, so this equals sorting everything).
        var bound = 0.5;
        while (true)
        {
            double mass = 0;
            for (var k = 0; k < count; k++)
            {
                if (Math.Abs(-logp[k] - entropy) <= bound) mass += p[k];
            }

            if (mass >= P || bound > 1e6) break;
            bound *= 2;
        }

        var selected = 0;
        for (var k = 0; k < count; k++)
        {
            var distance = Math.Abs(-logp[k] - entropy);
            if (distance <= bound)
            {
                _order[selected] = k;
                _distance[selected++] = (float)distance;
            }
        }

        Array.Sort(_distance, _order, 0, selected);
        double cumulative = 0;
        var keep = selected;
        for (var r = 0; r < selected; r++)
        {
            cumulative += p[_order[r]];
            if (cumulative >= P)
            {
                keep = r + 1;
                break;
            }
        }

        // Mask every candidate, then put the kept ones back.
        for (var r = 0; r < keep; r++) _distance[r] = logits[_ids[_order[r]]];
        for (var k = 0; k < count; k++) logits[_ids[k]] = float.NegativeInfinity;
        for (var r = 0; r < keep; r++) logits[_ids[_order[r]]] = _distance[r];
    }
}
