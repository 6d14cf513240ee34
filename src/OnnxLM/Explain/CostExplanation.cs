namespace OnnxLM.Explain;

/// <summary>
/// What one decoding step costs as the context grows, with the KV cache and recomputing the whole prefix without it:
/// measured times, the memory of the cache and of the attention scores, and least-squares fits of time against length.
/// </summary>
/// <param name="BytesPerToken">KV cache bytes per token: 2 (keys, values) × layers × KV heads × head size × element size.</param>
/// <param name="Points">One measurement per context length.</param>
/// <param name="CachedFit">The cached step's time ≈ a + b·n: [a, b] in milliseconds (linear: each step reads n cached keys).</param>
/// <param name="RecomputeFit">The recomputing step's time ≈ a + b·n + c·n²: [a, b, c] in milliseconds (the n × n scores make the quadratic term).</param>
public sealed record CostExplanation(long BytesPerToken, IReadOnlyList<CostPoint> Points, IReadOnlyList<double> CachedFit, IReadOnlyList<double> RecomputeFit);
