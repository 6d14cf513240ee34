namespace OnnxLM.Explain;

/// <summary>A token and how close it is to another (cosine similarity of their embeddings).</summary>
public sealed record TokenSimilarity(int Id, string Text, double Cosine);
