namespace OnnxLM;

/// <summary>The log-likelihood of a continuation given a context.</summary>
public sealed class ScoreResult
{
    internal ScoreResult(IReadOnlyList<int> contextTokenIds, IReadOnlyList<TokenScore> tokens)
    {
        ContextTokenIds = contextTokenIds;
        Tokens = tokens;
        double sum = 0;
        var greedy = true;
        foreach (var token in tokens)
        {
            sum += token.LogProb;
            greedy &= token.IsGreedy;
        }

        LogProb = sum;
        IsGreedy = greedy;
    }

    /// <summary>Total natural-log probability of the continuation's tokens.</summary>
    public double LogProb { get; }

    /// <summary>Whether greedy decoding from the context would have produced exactly the continuation's tokens.</summary>
    public bool IsGreedy { get; }

    /// <summary>The context's token ids as scored (with BOS or the prefix token when added).</summary>
    public IReadOnlyList<int> ContextTokenIds { get; }

    /// <summary>Per-token detail for the continuation.</summary>
    public IReadOnlyList<TokenScore> Tokens { get; }
}
