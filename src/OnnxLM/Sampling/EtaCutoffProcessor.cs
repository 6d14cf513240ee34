namespace OnnxLM.Sampling;

/// <summary>
/// Eta sampling (Hewitt et al. 2022; Hugging Face <c>EtaLogitsWarper</c>): masks tokens with probability below
/// η = min(ε, √ε · exp(−entropy)), an entropy-adaptive floor (the most likely token always stays).
/// </summary>
internal sealed class EtaCutoffProcessor : ILogitProcessor
{
    private double[] _probabilities = [];

    /// <summary>Creates the processor.</summary>
    /// <param name="epsilon">ε in (0, 1).</param>
    public EtaCutoffProcessor(float epsilon)
    {
        if (!(epsilon > 0 && epsilon < 1)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "EtaCutoff must be in (0, 1).");
        Epsilon = epsilon;
    }

    /// <summary>ε.</summary>
    public float Epsilon { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        if (_probabilities.Length != logits.Length) _probabilities = new double[logits.Length];
        SamplingMath.Softmax(logits, _probabilities);
        double entropy = 0;
        foreach (var q in _probabilities)
        {
            if (q > 0) entropy -= q * Math.Log(q);
        }

        var eta = Math.Min(Epsilon, Math.Sqrt(Epsilon) * Math.Exp(-entropy));
        var p = _probabilities;
        SamplingMath.MaskAllBut(logits, i => p[i] >= eta);
    }
}
