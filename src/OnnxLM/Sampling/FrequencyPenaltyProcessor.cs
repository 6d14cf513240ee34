namespace OnnxLM.Sampling;

/// <summary>
/// Presence and frequency penalties (OpenAI's definition; llama.cpp <c>presence_penalty</c>/<c>frequency_penalty</c>):
/// logit −= presence · [count &gt; 0] + frequency · count, with counts over the last <see cref="Window"/> tokens of the
/// sequence, or of the generated tokens only (<see cref="CountsPrompt"/> false, as OpenAI's API and vLLM count).
/// </summary>
internal sealed class FrequencyPenaltyProcessor : ILogitProcessor
{
    private int[] _counts = [];

    /// <summary>Creates the processor.</summary>
    /// <param name="presencePenalty">Subtracted once from every token present in the window.</param>
    /// <param name="frequencyPenalty">Subtracted once per occurrence in the window.</param>
    /// <param name="window">How many of the latest tokens are counted (≥ 1).</param>
    /// <param name="countsPrompt">Whether the prompt's tokens count; false counts generated tokens only.</param>
    public FrequencyPenaltyProcessor(float presencePenalty, float frequencyPenalty, int window, bool countsPrompt = true)
    {
        CountsPrompt = countsPrompt;
        if (!float.IsFinite(presencePenalty)) throw new ArgumentOutOfRangeException(nameof(presencePenalty), presencePenalty, "PresencePenalty must be finite.");
        if (!float.IsFinite(frequencyPenalty)) throw new ArgumentOutOfRangeException(nameof(frequencyPenalty), frequencyPenalty, "FrequencyPenalty must be finite.");
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        (PresencePenalty, FrequencyPenalty, Window) = (presencePenalty, frequencyPenalty, window);
    }

    /// <summary>Penalty for presence.</summary>
    public float PresencePenalty { get; }

    /// <summary>Penalty per occurrence.</summary>
    public float FrequencyPenalty { get; }

    /// <summary>Tokens counted.</summary>
    public int Window { get; }

    /// <summary>Whether the prompt's tokens count (false: generated tokens only).</summary>
    public bool CountsPrompt { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        if (_counts.Length != logits.Length) _counts = new int[logits.Length];
        var tokens = CountsPrompt ? context.Tokens : context.Tokens[context.PromptLength..];
        var recent = tokens[Math.Max(0, tokens.Length - Window)..];
        foreach (var id in recent)
        {
            if ((uint)id < (uint)logits.Length) _counts[id]++;
        }

        foreach (var id in recent)
        {
            if ((uint)id >= (uint)logits.Length || _counts[id] == 0) continue;
            logits[id] -= PresencePenalty + FrequencyPenalty * _counts[id];
            _counts[id] = 0; // applied once per distinct id; also leaves the buffer cleared
        }
    }
}
