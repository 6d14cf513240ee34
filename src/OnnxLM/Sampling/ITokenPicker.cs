namespace OnnxLM.Sampling;

/// <summary>The last step of the sampling pipeline: chooses the next token from processed logits.</summary>
public interface ITokenPicker
{
    /// <summary>Returns the chosen token id.</summary>
    /// <param name="logits">Processed logits; masked tokens are <see cref="float.NegativeInfinity"/>.</param>
    /// <param name="context">The sequence so far and the generation's random source.</param>
    int Pick(ReadOnlySpan<float> logits, SamplingContext context);
}
