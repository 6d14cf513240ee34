namespace OnnxLM.Explain;

/// <summary>
/// What one attention head does, averaged over the queries after the first: the weight it gives the previous token, the
/// first token, earlier copies of the query's own token, and the entropy of its attention (low: focused, high: spread).
/// </summary>
/// <param name="Layer">The layer (0-based).</param>
/// <param name="Head">The head within the layer (0-based).</param>
/// <param name="PreviousToken">Mean weight on the token just before the query.</param>
/// <param name="FirstToken">Mean weight on the first token.</param>
/// <param name="SameTokenEarlier">Mean weight on earlier occurrences of the query's token, over queries that have one; null when no token repeats.</param>
/// <param name="EntropyBits">Mean entropy of the query rows in bits.</param>
public sealed record HeadSummary(int Layer, int Head, double PreviousToken, double FirstToken, double? SameTokenEarlier, double EntropyBits);
