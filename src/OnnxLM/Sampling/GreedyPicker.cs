namespace OnnxLM.Sampling;

/// <summary>Picks the highest logit; ties go to the lowest token id.</summary>
internal sealed class GreedyPicker : ITokenPicker
{
    /// <summary>The shared instance (the picker has no state).</summary>
    public static GreedyPicker Instance { get; } = new();

    /// <inheritdoc />
    public int Pick(ReadOnlySpan<float> logits, SamplingContext context) => SamplingMath.ArgMax(logits);
}
