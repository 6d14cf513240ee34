namespace OnnxLM;

/// <summary>How <see cref="LanguageModel.BeamSearchAsync(string, BeamSearchOptions?, CancellationToken)"/> searches.</summary>
public sealed class BeamSearchOptions
{
    /// <summary>
    /// The most beams a search may keep: each beam holds a whole KV cache (and twice as many candidates are scored per
    /// step), so the bound keeps one call from exhausting memory. 64.
    /// </summary>
    public const int MaxNumBeams = 64;

    /// <summary>Beams kept per step (1 to <see cref="MaxNumBeams"/>). Default 4.</summary>
    /// <exception cref="InvalidOptionException">The value is below 1 or above <see cref="MaxNumBeams"/>.</exception>
    public int NumBeams { get; set => field = OptionCheck.InRange(value, 1, MaxNumBeams, nameof(NumBeams)); } = 4;

    /// <summary>The most tokens to generate (≥ 1). Default 64.</summary>
    public int MaxNewTokens { get; set => field = OptionCheck.AtLeast(value, 1, nameof(MaxNewTokens)); } = 64;

    /// <summary>
    /// Hypothesis score = sum of log-probs / generated_length^LengthPenalty (Hugging Face's definition): above 0
    /// favours longer sequences, below 0 shorter ones. Default 1.
    /// </summary>
    public float LengthPenalty { get; set => field = OptionCheck.Finite(value, nameof(LengthPenalty)); } = 1f;

    /// <summary>Stop as soon as <see cref="NumBeams"/> hypotheses are finished (true), or only when no running beam can still beat them (false, the default).</summary>
    public bool EarlyStopping { get; set; }

    /// <summary>Token ids that finish a beam. Null uses the model's EOS ids.</summary>
    public IReadOnlyList<int>? StopTokenIds { get; set; }

    /// <summary>Whether to put BOS before the prompt. Null follows the tokenizer.</summary>
    public bool? AddBosToken { get; set; }
}
