namespace OnnxLM.Sampling;

/// <summary>
/// Repetition penalty (Keskar et al. 2019, CTRL; Hugging Face <c>RepetitionPenaltyLogitsProcessor</c>): every token
/// already in the sequence (prompt included) has its logit divided by the penalty when positive and multiplied
/// by it when negative, so values above 1 discourage repeats.
/// </summary>
internal sealed class RepetitionPenaltyProcessor : ILogitProcessor
{
    private bool[] _seen = [];

    /// <summary>Creates the processor.</summary>
    /// <param name="penalty">A finite value &gt; 0; 1 leaves logits unchanged.</param>
    public RepetitionPenaltyProcessor(float penalty)
    {
        if (!(penalty > 0) || !float.IsFinite(penalty)) throw new ArgumentOutOfRangeException(nameof(penalty), penalty, "RepetitionPenalty must be a finite number > 0.");
        Penalty = penalty;
    }

    /// <summary>The penalty.</summary>
    public float Penalty { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        // The marks are cleared by walking the sequence again, not the vocabulary: a step costs the sequence's length.
        if (_seen.Length != logits.Length) _seen = new bool[logits.Length];
        var tokens = context.Tokens;
        foreach (var id in tokens)
        {
            if ((uint)id >= (uint)logits.Length || _seen[id]) continue;
            _seen[id] = true;
            logits[id] = logits[id] < 0 ? logits[id] * Penalty : logits[id] / Penalty;
        }

        foreach (var id in tokens)
        {
            if ((uint)id < (uint)logits.Length) _seen[id] = false;
        }
    }
}
