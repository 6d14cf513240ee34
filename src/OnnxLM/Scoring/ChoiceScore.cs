namespace OnnxLM;

/// <summary>One answer of a multiple-choice question, scored as a continuation of the question.</summary>
/// <param name="Choice">The answer text as given.</param>
/// <param name="Score">The full log-likelihood result.</param>
/// <param name="ByteCount">UTF-8 bytes of the scored continuation (leading whitespace included).</param>
public sealed record ChoiceScore(string Choice, ScoreResult Score, int ByteCount)
{
    /// <summary>Log-likelihood of the answer (lm-eval's <c>acc</c> ranks by this).</summary>
    public double LogProb => Score.LogProb;

    /// <summary>Log-likelihood per token.</summary>
    public double LogProbPerToken => Score.LogProb / Score.Tokens.Count;

    /// <summary>Log-likelihood per byte (length normalisation in the spirit of lm-eval's <c>acc_norm</c>, comparable across tokenizers).</summary>
    public double LogProbPerByte => Score.LogProb / Math.Max(1, ByteCount);
}
