namespace OnnxLM.Tokenization;

/// <summary>
/// An entry of tokenizer.json's <c>added_tokens</c>: matched in the text before the model sees it, with the flags that
/// say how: <see cref="LStrip"/>/<see cref="RStrip"/> swallow the whitespace beside it, <see cref="SingleWord"/> only
/// matches a whole word, <see cref="Normalized"/> matches the normalized text instead of the original.
/// </summary>
internal sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false, bool SingleWord = false, bool? Normalized = null)
{
    /// <summary>Whether the token is matched after normalization; Hugging Face's default is true for non-special tokens.</summary>
    public bool IsNormalized => Normalized ?? !Special;
}
