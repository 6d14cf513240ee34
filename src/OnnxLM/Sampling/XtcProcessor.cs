namespace OnnxLM.Sampling;

/// <summary>
/// XTC, "Exclude Top Choices" (p-e-w's sampler, as in llama.cpp): with probability <see cref="Probability"/>, when at
/// least two tokens have probability ≥ <see cref="Threshold"/>, all of them except the least likely are removed,
/// steering away from the most predictable continuations while staying coherent.
/// </summary>
internal sealed class XtcProcessor : ILogitProcessor
{
    private double[] _probabilities = [];

    /// <summary>Creates the processor.</summary>
    /// <param name="probability">Chance per step of applying the cut, in [0, 1].</param>
    /// <param name="threshold">Probability a token needs to count as a top choice, in (0, 0.5].</param>
    public XtcProcessor(float probability, float threshold)
    {
        if (!(probability >= 0 && probability <= 1)) throw new ArgumentOutOfRangeException(nameof(probability), probability, "XtcProbability must be in [0, 1].");
        if (!(threshold > 0 && threshold <= 0.5f)) throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "XtcThreshold must be in (0, 0.5].");
        (Probability, Threshold) = (probability, threshold);
    }

    /// <summary>Chance per step.</summary>
    public float Probability { get; }

    /// <summary>Top-choice probability.</summary>
    public float Threshold { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        if (context.Random.NextDouble() >= Probability) return;
        if (_probabilities.Length != logits.Length) _probabilities = new double[logits.Length];
        SamplingMath.Softmax(logits, _probabilities);
        var count = 0;
        var weakest = -1;
        for (var i = 0; i < logits.Length; i++)
        {
            if (_probabilities[i] < Threshold) continue;
            count++;
            if (weakest < 0 || _probabilities[i] < _probabilities[weakest]) weakest = i;
        }

        if (count < 2) return;
        for (var i = 0; i < logits.Length; i++)
        {
            if (i != weakest && _probabilities[i] >= Threshold) logits[i] = float.NegativeInfinity;
        }
    }
}
