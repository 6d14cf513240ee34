namespace OnnxLM;

/// <summary>The outcome of one generation.</summary>
public sealed class GenerationResult
{
    internal GenerationResult(string text, IReadOnlyList<GeneratedToken> tokens, int promptTokenCount, FinishReason finishReason)
    {
        Text = text;
        Tokens = tokens;
        PromptTokenCount = promptTokenCount;
        FinishReason = finishReason;
        TokenIds = tokens.Select(t => t.Id).ToArray();
    }

    /// <summary>The generated text (without the prompt or stop tokens).</summary>
    public string Text { get; }

    /// <summary>The generated token ids, including a final stop token if one ended generation.</summary>
    public IReadOnlyList<int> TokenIds { get; }

    /// <summary>Per-token detail: id, text delta and log-probability.</summary>
    public IReadOnlyList<GeneratedToken> Tokens { get; }

    /// <summary>How many tokens the prompt had (BOS included when added).</summary>
    public int PromptTokenCount { get; }

    /// <summary>Why generation ended.</summary>
    public FinishReason FinishReason { get; }

    /// <summary>Sum of the generated tokens' log-probabilities.</summary>
    public double LogProb => Tokens.Sum(t => t.LogProb);
}
