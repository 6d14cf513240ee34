namespace OnnxLM.Sampling;

/// <summary>
/// Epsilon sampling (Hewitt et al. 2022, "Truncation Sampling as Language Model Desmoothing"; Hugging Face
/// <c>EpsilonLogitsWarper</c>): masks tokens with probability below <see cref="Epsilon"/> (the most likely token always stays).
/// </summary>
internal sealed class EpsilonCutoffProcessor : ILogitProcessor
{
    private double[] _probabilities = [];

    /// <summary>Creates the processor.</summary>
    /// <param name="epsilon">Probability floor in (0, 1).</param>
    public EpsilonCutoffProcessor(float epsilon)
    {
        if (!(epsilon > 0 && epsilon < 1)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "EpsilonCutoff must be in (0, 1).");
        Epsilon = epsilon;
    }

    /// <summary>The probability floor.</summary>
    public float Epsilon { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        if (_probabilities.Length != logits.Length) _probabilities = new double[logits.Length];
        SamplingMath.Softmax(logits, _probabilities);
        var p = _probabilities;
        SamplingMath.MaskAllBut(logits, i => p[i] >= Epsilon);
    }
}
