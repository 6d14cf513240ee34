namespace OnnxLM.Explain;

/// <summary>Every head of every layer over a prompt: the attention matrices and a summary per head.</summary>
/// <param name="Attention">The attention probabilities, [layer, head, query, key].</param>
/// <param name="Heads">One summary per layer and head, layer by layer.</param>
public sealed record HeadsExplanation(AttentionMap Attention, IReadOnlyList<HeadSummary> Heads);
