namespace OnnxLM.Explain;

/// <summary>What the KV cache costs and saves: bytes per token, and step times with and without it as the sequence grows.</summary>
public sealed record CacheExplanation(long BytesPerToken, long BytesAtContext, int ContextLength, IReadOnlyList<CacheTiming> Timings);
