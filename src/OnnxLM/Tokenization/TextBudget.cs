namespace OnnxLM.Tokenization;

/// <summary>
/// What one encode call may spend: how far its normalizers and pre-tokenizers may grow the text (every piece's growth
/// counts against one total, so splitting first cannot multiply the allowance) and the caller's cancellation.
/// </summary>
/// <remarks>
/// Growth is charged while a stage writes (<see cref="NormalizedText.Rewriter"/>), not after it: five chained Replace
/// normalizers of "a" → 1,000 "a"s make 8 characters into 8·10¹⁵, and the process would run out of memory before
/// the stage returned.
/// </remarks>
internal sealed class TextBudget
{
    private readonly string _source;
    private readonly int _inputLength;
    private long _grown;

    /// <param name="inputLength">The length of the text as given (UTF-16 units).</param>
    /// <param name="source">The tokenizer file, for messages.</param>
    /// <param name="cancellation">The caller's token, checked per piece and per word.</param>
    public TextBudget(int inputLength, string source, CancellationToken cancellation = default)
    {
        _inputLength = inputLength;
        _source = source;
        Cancellation = cancellation;
        Limit = (long)TextTokenizer.MaxGrowthFactor * inputLength + TextTokenizer.MaxGrowthSlack;
    }

    /// <summary>The most UTF-16 units the stages may add to the text, all pieces together.</summary>
    public long Limit { get; }

    /// <summary>The tokenizer.json section running now ("normalizer", "pre_tokenizer"), for messages.</summary>
    public string Phase { get; set; } = "normalizer";

    public CancellationToken Cancellation { get; }

    /// <summary>Charges <paramref name="units"/> more units of growth.</summary>
    /// <exception cref="TokenizationLimitException">The total growth went past <see cref="Limit"/>.</exception>
    public void Grow(long units)
    {
        _grown += units;
        if (_grown > Limit)
        {
            throw new TokenizationLimitException(Phase,
                $"Tokenizer '{_source}': the {Phase} stages grew a text of {_inputLength:N0} characters by more than {Limit:N0} " +
                $"({TextTokenizer.MaxGrowthFactor} × its length + {TextTokenizer.MaxGrowthSlack:N0}); the tokenizer file's {Phase} rewrites text without bound.");
        }
    }
}
