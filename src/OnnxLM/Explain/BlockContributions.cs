namespace OnnxLM.Explain;

/// <summary>
/// How much each layer's attention block and MLP block move the residual stream: the Euclidean norm of what each adds,
/// at every position, next to the norm of the token embedding they start from and of the stream after each layer.
/// </summary>
/// <param name="Tokens">The prompt's tokens, as text (the positions).</param>
/// <param name="EmbeddingNorms">The norm of the residual stream before the first layer, per position.</param>
/// <param name="AttentionNorms">[layer][position]: the norm of the attention block's output added to the stream.</param>
/// <param name="MlpNorms">[layer][position]: the norm of the MLP block's output added to the stream.</param>
/// <param name="ResidualNorms">[layer][position]: the norm of the stream after the layer.</param>
public sealed record BlockContributions(IReadOnlyList<string> Tokens, IReadOnlyList<double> EmbeddingNorms, IReadOnlyList<IReadOnlyList<double>> AttentionNorms,
    IReadOnlyList<IReadOnlyList<double>> MlpNorms, IReadOnlyList<IReadOnlyList<double>> ResidualNorms);
