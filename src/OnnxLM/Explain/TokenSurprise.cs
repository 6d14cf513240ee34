namespace OnnxLM.Explain;

/// <summary>A token of a text and how surprising the model found it: −log₂ p (the training loss, in bits) and its rank.</summary>
public sealed record TokenSurprise(int Id, string Text, double Probability, double SurpriseBits, int Rank);
