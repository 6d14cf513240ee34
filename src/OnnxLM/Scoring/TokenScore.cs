namespace OnnxLM;

/// <summary>How likely the model found one scored token.</summary>
/// <param name="Id">The token id.</param>
/// <param name="Text">The token's text (its decoded piece).</param>
/// <param name="LogProb">Natural-log probability of the token given everything before it (log-softmax of raw logits, in double).</param>
/// <param name="Rank">1 + the number of tokens the model ranked higher (1 = the greedy choice; ties count the lower id first).</param>
public sealed record TokenScore(int Id, string Text, double LogProb, int Rank)
{
    /// <summary>Whether greedy decoding would have chosen this token.</summary>
    public bool IsGreedy => Rank == 1;

    /// <summary>The most likely tokens at this position, best first (<see cref="ScoreOptions.TopAlternatives"/> of them; empty by default).</summary>
    public IReadOnlyList<TokenAlternative> Alternatives { get; init; } = [];
}
