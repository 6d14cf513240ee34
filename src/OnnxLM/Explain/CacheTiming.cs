namespace OnnxLM.Explain;

/// <summary>One sequence length: a decoding step with the cache, the same step recomputing the whole prefix, and a prefill of that length.</summary>
public sealed record CacheTiming(int Length, double CachedStepMs, double RecomputeStepMs, double PrefillMs);
