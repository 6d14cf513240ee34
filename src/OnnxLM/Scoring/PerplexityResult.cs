namespace OnnxLM;

/// <summary>How well a model predicts a whole text: every token's log-probability, summed, with the usual normalisations.</summary>
public sealed class PerplexityResult
{
    internal PerplexityResult(double logProb, int tokenCount, long byteCount, int wordCount, int windowCount)
    {
        LogProb = logProb;
        TokenCount = tokenCount;
        ByteCount = byteCount;
        WordCount = wordCount;
        WindowCount = windowCount;
    }

    /// <summary>Total natural-log probability of the text's tokens.</summary>
    public double LogProb { get; }

    /// <summary>Tokens predicted (the text's tokens; the prefix token is given, not predicted).</summary>
    public int TokenCount { get; }

    /// <summary>UTF-8 bytes of the text.</summary>
    public long ByteCount { get; }

    /// <summary>Whitespace-separated words in the text.</summary>
    public int WordCount { get; }

    /// <summary>Forward passes used.</summary>
    public int WindowCount { get; }

    /// <summary>Mean negative log-likelihood per token (nats).</summary>
    public double NllPerToken => -LogProb / TokenCount;

    /// <summary>exp(mean NLL per token). Depends on the tokenizer; compare models with <see cref="BitsPerByte"/>.</summary>
    public double Perplexity => Math.Exp(NllPerToken);

    /// <summary>Total NLL in bits divided by the text's UTF-8 bytes: comparable across tokenizers.</summary>
    public double BitsPerByte => -LogProb / Math.Log(2) / ByteCount;

    /// <summary>exp(total NLL / words), lm-evaluation-harness's word perplexity.</summary>
    public double WordPerplexity => Math.Exp(-LogProb / WordCount);
}
