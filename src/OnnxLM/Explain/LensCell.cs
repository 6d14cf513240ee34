namespace OnnxLM.Explain;

/// <summary>One layer at one position of the logit lens: its most likely next tokens, and how likely and how highly ranked the model's eventual prediction already is.</summary>
/// <param name="Top">The most likely next tokens read at this layer.</param>
/// <param name="FinalTokenProbability">The probability this layer gives the token the full model predicts here.</param>
/// <param name="FinalTokenRank">That token's rank at this layer (1 = top).</param>
public sealed record LensCell(IReadOnlyList<TokenProbability> Top, double FinalTokenProbability, int FinalTokenRank);
