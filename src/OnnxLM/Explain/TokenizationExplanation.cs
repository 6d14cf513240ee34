namespace OnnxLM.Explain;

/// <summary>How a text becomes tokens: the merges per word and the resulting tokens.</summary>
public sealed record TokenizationExplanation(string Text, IReadOnlyList<WordMerges> Words, IReadOnlyList<ExplainedToken> Tokens);
