namespace OnnxLM;

/// <summary>Every answer of a multiple-choice question scored, with the winners under each normalisation.</summary>
public sealed class MultipleChoiceResult
{
    internal MultipleChoiceResult(IReadOnlyList<ChoiceScore> choices)
    {
        Choices = choices;
        Best = ArgMax(c => c.LogProb);
        BestPerToken = ArgMax(c => c.LogProbPerToken);
        BestPerByte = ArgMax(c => c.LogProbPerByte);
    }

    /// <summary>The answers in the order given.</summary>
    public IReadOnlyList<ChoiceScore> Choices { get; }

    /// <summary>Index of the most likely answer (lm-eval <c>acc</c>).</summary>
    public int Best { get; }

    /// <summary>Index of the best answer by log-likelihood per token.</summary>
    public int BestPerToken { get; }

    /// <summary>Index of the best answer by log-likelihood per byte (lm-eval <c>acc_norm</c>-style).</summary>
    public int BestPerByte { get; }

    private int ArgMax(Func<ChoiceScore, double> key)
    {
        var best = 0;
        for (var i = 1; i < Choices.Count; i++)
        {
            if (key(Choices[i]) > key(Choices[best])) best = i;
        }

        return best;
    }
}
