namespace OnnxLM;

/// <summary>
/// A tokenizer stage went past one of the limits that keep a hostile or broken tokenizer file from hanging or
/// exhausting the process: a regex that took longer than <see cref="TextTokenizer.RegexMatchTimeout"/> on one match,
/// or normalizers / pre-tokenizers that grew the text past <see cref="TextTokenizer.MaxGrowthFactor"/> × its length
/// + <see cref="TextTokenizer.MaxGrowthSlack"/>. The message names the tokenizer file, the stage and the pattern.
/// </summary>
public sealed class TokenizationLimitException : OnnxLMException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="stage">The tokenizer stage that went past the limit (a tokenizer.json field such as "pre_tokenizer.pretokenizers[0]").</param>
    /// <param name="message">What went past which limit.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public TokenizationLimitException(string stage, string message, Exception? innerException = null)
        : base(message, innerException) => Stage = stage;

    /// <summary>The tokenizer stage that went past the limit.</summary>
    public string Stage { get; }
}
