namespace OnnxLM.Explain;

/// <summary>How surprising each token of a text is to the model, and the average (bits per token).</summary>
public sealed record SurpriseExplanation(string Text, IReadOnlyList<TokenSurprise> Tokens, double MeanSurpriseBits);
