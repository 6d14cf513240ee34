namespace OnnxLM.Explain;

/// <summary>The spread of cosine similarity between random pairs of token embeddings (near 0: almost orthogonal).</summary>
public sealed record CosineSummary(int Pairs, double Mean, double StandardDeviation, double MeanAbsolute, IReadOnlyList<int> Histogram, double HistogramMin, double HistogramMax);
