namespace OnnxLM.Explain;

/// <summary>A candidate next token and its probability.</summary>
public sealed record TokenProbability(int Id, string Text, double Probability);
