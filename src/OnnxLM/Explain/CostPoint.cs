namespace OnnxLM.Explain;

/// <summary>
/// One context length n: the time of the step that adds token n + 1 with the cache and recomputing all n + 1 tokens,
/// the KV cache's bytes after it, and the bytes of that step's attention scores (every layer and head).
/// </summary>
/// <param name="Length">Tokens before the step.</param>
/// <param name="CachedStepMs">The step over the cache (best of the repeats).</param>
/// <param name="RecomputeStepMs">The same step recomputing the whole prefix (best of the repeats).</param>
/// <param name="KvCacheBytes">The cache holding n + 1 tokens.</param>
/// <param name="CachedScoreBytes">Scores of one query against n + 1 keys: layers × heads × (n + 1) × element size.</param>
/// <param name="RecomputeScoreBytes">Scores of n + 1 queries against n + 1 keys: layers × heads × (n + 1)² × element size.</param>
public sealed record CostPoint(int Length, double CachedStepMs, double RecomputeStepMs, long KvCacheBytes, long CachedScoreBytes, long RecomputeScoreBytes);
