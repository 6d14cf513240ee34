namespace OnnxLM.Explain;

/// <summary>
/// The next-token distribution after a prompt with one block zeroed (a layer's MLP, or one attention head) against the
/// plain run: the top tokens before and after, how far the distribution moved, and what became of the original favourite.
/// </summary>
/// <param name="Prompt">The text before the next token.</param>
/// <param name="Layer">The layer whose block was zeroed.</param>
/// <param name="Head">The zeroed head, or null when the layer's MLP was zeroed.</param>
/// <param name="Before">The most likely next tokens of the plain run.</param>
/// <param name="After">The most likely next tokens with the block zeroed.</param>
/// <param name="KlDivergenceBits">KL(before ‖ after) in bits: 0 when zeroing changes nothing.</param>
/// <param name="OriginalTop">The plain run's most likely token and its probability.</param>
/// <param name="OriginalTopProbabilityAfter">That token's probability with the block zeroed.</param>
public sealed record AblationResult(string Prompt, int Layer, int? Head, IReadOnlyList<TokenProbability> Before, IReadOnlyList<TokenProbability> After,
    double KlDivergenceBits, TokenProbability OriginalTop, double OriginalTopProbabilityAfter);
