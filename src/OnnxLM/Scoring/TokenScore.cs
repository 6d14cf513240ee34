namespace OnnxLM;

/// <summary>How likely the model found one token of a scored continuation.</summary>
/// <param name="Id">The token id.</param>
/// <param name="Text">The token's text (its decoded piece).</param>
/// <param name="LogProb">Natural-log probability of the token given everything before it (log-softmax of raw logits, in double).</param>
/// <param name="Rank">1 + the number of tokens the model ranked higher (1 = the greedy choice; ties count the lower id first).</param>
public sealed record TokenScore(int Id, string Text, double LogProb, int Rank)
{
    /// <summary>Whether greedy decoding would have chosen this token.</summary>
    public bool IsGreedy => Rank == 1;
}
