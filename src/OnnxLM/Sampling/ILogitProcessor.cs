namespace OnnxLM.Sampling;

/// <summary>
/// One step of the sampling pipeline: changes next-token logits in place (scale, mask with
/// <see cref="float.NegativeInfinity"/>, penalise) before a <see cref="ITokenPicker"/> chooses the token.
/// Implement it to add your own rule; instances are used by one generation at a time.
/// </summary>
public interface ILogitProcessor
{
    /// <summary>Transforms the logits for the next token.</summary>
    /// <param name="logits">Logits over the whole vocabulary, modified in place.</param>
    /// <param name="context">The sequence so far and the generation's random source.</param>
    void Process(Span<float> logits, SamplingContext context);
}
