namespace OnnxLM;

/// <summary>How <see cref="LanguageModel.BeamSearchAsync(string, BeamSearchOptions?, CancellationToken)"/> searches.</summary>
public sealed class BeamSearchOptions
{
    private int _beams = 4;
    private int _maxNewTokens = 64;
    private float _lengthPenalty = 1f;

    /// <summary>Beams kept per step (≥ 1). Default 4.</summary>
    public int NumBeams
    {
        get => _beams;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(NumBeams));
            _beams = value;
        }
    }

    /// <summary>The most tokens to generate (≥ 1). Default 64.</summary>
    public int MaxNewTokens
    {
        get => _maxNewTokens;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(MaxNewTokens));
            _maxNewTokens = value;
        }
    }

    /// <summary>
    /// Hypothesis score = sum of log-probs / generated_length^LengthPenalty (Hugging Face's definition): above 0
    /// favours longer sequences, below 0 shorter ones. Default 1.
    /// </summary>
    public float LengthPenalty
    {
        get => _lengthPenalty;
        set => _lengthPenalty = float.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(nameof(LengthPenalty), value, "LengthPenalty must be finite.");
    }

    /// <summary>Stop as soon as <see cref="NumBeams"/> hypotheses are finished (true), or only when no running beam can still beat them (false, the default).</summary>
    public bool EarlyStopping { get; set; }

    /// <summary>Token ids that finish a beam. Null uses the model's EOS ids.</summary>
    public IReadOnlyList<int>? StopTokenIds { get; set; }

    /// <summary>Whether to put BOS before the prompt. Null follows the tokenizer.</summary>
    public bool? AddBosToken { get; set; }
}
