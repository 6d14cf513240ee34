namespace OnnxLM.Explain;

/// <summary>
/// The logit lens over a prompt: every layer's hidden state at every position put through the final norm and the
/// unembedding, as if the model stopped there. Row 0 is the embeddings, row l the hidden state after layer l; the last
/// row is the model's own prediction.
/// </summary>
/// <param name="Tokens">The prompt's tokens, as text (the columns).</param>
/// <param name="Final">Per position, the token the full model predicts next and its probability.</param>
/// <param name="Layers">Rows [layer][position]: 0 = embeddings, then after each layer.</param>
public sealed record LogitLens(IReadOnlyList<string> Tokens, IReadOnlyList<TokenProbability> Final, IReadOnlyList<IReadOnlyList<LensCell>> Layers);
