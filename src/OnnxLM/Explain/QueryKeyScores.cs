namespace OnnxLM.Explain;

/// <summary>
/// One query position in one layer, for every head: the raw query·key dot products, after the scaling, the mask the graph
/// adds (0 where the key is visible, null where it is masked out), and the softmax weights — "dot product → softmax" in numbers.
/// </summary>
/// <param name="Tokens">The prompt's tokens, as text (the keys).</param>
/// <param name="Layer">The layer (0-based).</param>
/// <param name="Query">The query position (0-based).</param>
/// <param name="Scale">The factor the graph multiplies q·k by before the softmax (1/√head size for most models).</param>
/// <param name="Raw">[head][key] q·k as the graph's MatMul computes it.</param>
/// <param name="Scaled">[head][key] q·k × <paramref name="Scale"/>.</param>
/// <param name="Mask">[key] what the graph adds to the scaled score: 0 for a visible key, null for a masked one (−∞ or the float minimum).</param>
/// <param name="Weights">[head][key] the softmax output: the attention weights.</param>
public sealed record QueryKeyScores(IReadOnlyList<string> Tokens, int Layer, int Query, double Scale, IReadOnlyList<float[]> Raw, IReadOnlyList<float[]> Scaled,
    IReadOnlyList<float?> Mask, IReadOnlyList<float[]> Weights);
