namespace OnnxLM;

/// <summary>How <see cref="LanguageModel.ScorePerplexityAsync(string, PerplexityOptions?, IProgress{double}?, CancellationToken)"/> windows a long text.</summary>
public sealed class PerplexityOptions
{
    /// <summary>The window used when <see cref="WindowLength"/> is null: the context length, capped at 2,048 (one window's logits are window × vocabulary floats: 1 GB at 2,048 × 128k).</summary>
    internal static int DefaultWindowLength(int contextLength) => Math.Min(contextLength, 2048);

    /// <summary>Tokens the model sees per forward pass; null uses the model's context length, capped at 2,048 (one window's logits are window × vocabulary floats).</summary>
    public int? WindowLength { get; set => field = value is null ? null : OptionCheck.AtLeast(value.Value, 2, nameof(WindowLength)); }

    /// <summary>
    /// New tokens scored per window (at most <see cref="WindowLength"/>). Null (the default) scores a whole window each
    /// time, as lm-evaluation-harness's <c>loglikelihood_rolling</c> does (each window sees one token before its
    /// targets); smaller strides give every window <c>WindowLength − Stride</c> tokens of extra context, as in
    /// Hugging Face's strided perplexity. Every token is predicted exactly once either way.
    /// </summary>
    public int? Stride { get; set => field = value is null ? null : OptionCheck.AtLeast(value.Value, 1, nameof(Stride)); }

    /// <summary>The token the text is conditioned on first; null uses BOS, else the first EOS (lm-eval's prefix token).</summary>
    public int? PrefixTokenId { get; set; }
}
