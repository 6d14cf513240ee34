namespace OnnxLM.Sampling;

/// <summary>
/// Top-nσ (Tang et al. 2024, "Top-nσ: Not All Logits Are You Need"; llama.cpp <c>top_n_sigma</c>): keeps tokens whose
/// logit is within <see cref="N"/> standard deviations of the largest logit (σ over the finite logits).
/// </summary>
internal sealed class TopNSigmaProcessor : ILogitProcessor
{
    /// <summary>Creates the processor.</summary>
    /// <param name="n">Number of standard deviations, ≥ 0.</param>
    public TopNSigmaProcessor(float n)
    {
        if (!(n >= 0) || !float.IsFinite(n)) throw new ArgumentOutOfRangeException(nameof(n), n, "TopNSigma must be a finite number ≥ 0.");
        N = n;
    }

    /// <summary>Standard deviations kept below the maximum.</summary>
    public float N { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        double sum = 0, sumSquares = 0;
        var count = 0;
        var max = float.NegativeInfinity;
        foreach (var l in logits)
        {
            if (float.IsNegativeInfinity(l)) continue;
            sum += l;
            sumSquares += (double)l * l;
            count++;
            max = Math.Max(max, l);
        }

        var mean = sum / count;
        var sigma = Math.Sqrt(Math.Max(0, sumSquares / count - mean * mean));
        SamplingMath.MaskBelow(logits, (float)(max - N * sigma));
    }
}
