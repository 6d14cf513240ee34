namespace OnnxLM.Sampling;

/// <summary>
/// Min-p (Nguyen et al. 2024; Hugging Face <c>MinPLogitsWarper</c>, llama.cpp <c>min_p</c>): keeps tokens whose
/// probability is at least <see cref="MinP"/> times the most likely token's probability.
/// </summary>
internal sealed class MinPProcessor : ILogitProcessor
{
    /// <summary>Creates the processor.</summary>
    /// <param name="minP">Relative threshold in [0, 1].</param>
    public MinPProcessor(float minP)
    {
        if (!(minP >= 0 && minP <= 1)) throw new ArgumentOutOfRangeException(nameof(minP), minP, "MinP must be in [0, 1].");
        MinP = minP;
    }

    /// <summary>The relative threshold.</summary>
    public float MinP { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        // p_i ≥ minP · p_max  ⟺  logit_i ≥ logit_max + ln(minP).
        SamplingMath.MaskBelow(logits, logits[SamplingMath.ArgMax(logits)] + MathF.Log(MinP));
    }
}
