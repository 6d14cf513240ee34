namespace OnnxLM.Sampling;

/// <summary>
/// Mirostat (Basu et al. 2021), a picker that keeps the observed surprise near a target τ by adapting a cut-off μ
/// (starting at 2τ, updated μ −= η·(surprise − τ) after each token). Version 2 drops tokens whose surprise
/// −log₂p exceeds μ; version 1 estimates the Zipf exponent from the top 100 tokens and keeps the top k it implies.
/// Stateful: use one instance per generation.
/// </summary>
internal sealed class MirostatPicker : ITokenPicker
{
    private readonly int _version;
    private double[] _probabilities = [];
    private int[] _order = [];
    private float[] _keys = [];

    /// <summary>Creates the picker.</summary>
    /// <param name="version">1 or 2.</param>
    /// <param name="tau">Target surprise in bits (&gt; 0), llama.cpp default 5.</param>
    /// <param name="eta">Learning rate (&gt; 0), llama.cpp default 0.1.</param>
    public MirostatPicker(int version, float tau, float eta)
    {
        if (version is not (1 or 2)) throw new ArgumentOutOfRangeException(nameof(version), version, "Mirostat must be 1 or 2.");
        if (!(tau > 0) || !float.IsFinite(tau)) throw new ArgumentOutOfRangeException(nameof(tau), tau, "MirostatTau must be > 0.");
        if (!(eta > 0) || !float.IsFinite(eta)) throw new ArgumentOutOfRangeException(nameof(eta), eta, "MirostatEta must be > 0.");
        (_version, Tau, Eta, Mu) = (version, tau, eta, 2 * tau);
    }

    /// <summary>Target surprise (bits).</summary>
    public float Tau { get; }

    /// <summary>Learning rate.</summary>
    public float Eta { get; }

    /// <summary>The current cut-off μ (bits).</summary>
    public double Mu { get; private set; }

    /// <inheritdoc />
    public int Pick(ReadOnlySpan<float> logits, SamplingContext context)
    {
        var n = logits.Length;
        if (_order.Length != n) (_probabilities, _order, _keys) = (new double[n], new int[n], new float[n]);
        SamplingMath.Softmax(logits, _probabilities);

        int keep;
        if (_version == 2)
        {
            // The most likely token, and every other whose surprise −log₂p is at most μ (p ≥ 2^−μ): only those are sorted.
            var best = SamplingMath.ArgMax(logits);
            var threshold = Math.Pow(2, -Mu);
            _order[0] = best;
            keep = 1;
            for (var i = 0; i < n; i++)
            {
                if (i != best && _probabilities[i] >= threshold) _order[keep++] = i;
            }

            SamplingMath.SortByLogit(logits, _order, _keys, keep);
        }
        else
        {
            var finite = SamplingMath.SortDescending(logits, _order, _keys); // _order holds the finite candidates only
            const int m = 100;
            double sumTiBi = 0, sumTiSquared = 0;
            for (var i = 0; i < Math.Min(m, finite) - 1; i++)
            {
                var (p, q) = (_probabilities[_order[i]], _probabilities[_order[i + 1]]);
                if (p <= 0 || q <= 0) break;
                var t = Math.Log((i + 2.0) / (i + 1.0));
                sumTiBi += t * Math.Log(p / q);
                sumTiSquared += t * t;
            }

            var sHat = sumTiSquared > 0 ? sumTiBi / sumTiSquared : 1;
            var epsilonHat = sHat - 1;
            var k = Math.Abs(epsilonHat) < 1e-9 ? n : Math.Pow(epsilonHat * Math.Pow(2, Mu) / (1 - Math.Pow(n, -epsilonHat)), 1 / sHat);
            keep = (int)Math.Clamp(double.IsFinite(k) ? Math.Round(k) : n, 1, finite); // k uses the vocabulary size, as llama.cpp
        }

        double total = 0;
        for (var r = 0; r < keep; r++) total += _probabilities[_order[r]];
        var target = context.Random.NextDouble() * total;
        var chosen = keep - 1;
        double cumulative = 0;
        for (var r = 0; r < keep; r++)
        {
            cumulative += _probabilities[_order[r]];
            if (cumulative > target)
            {
                chosen = r;
                break;
            }
        }

        var id = _order[chosen];
        var surprise = -Math.Log2(_probabilities[id] / total);
        Mu -= Eta * (surprise - Tau);
        return id;
    }
}
