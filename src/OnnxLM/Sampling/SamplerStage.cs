namespace OnnxLM.Sampling;

/// <summary>
/// A sampling step whose position in the chain can be chosen with <see cref="GenerationOptions.SamplerOrder"/>.
/// Hard rules (logit bias, banned sequences, suppressed tokens, no-repeat n-grams, minimum new tokens) always run
/// first, and the picker (greedy, categorical or Mirostat) always last.
/// </summary>
public enum SamplerStage
{
    /// <summary>Repetition penalty, then presence/frequency penalties.</summary>
    Penalties,

    /// <summary>DRY repeat penalty.</summary>
    Dry,

    /// <summary>Temperature scaling (skipped when greedy).</summary>
    Temperature,

    /// <summary>Top-k.</summary>
    TopK,

    /// <summary>Top-p (nucleus).</summary>
    TopP,

    /// <summary>Min-p.</summary>
    MinP,

    /// <summary>Locally typical sampling.</summary>
    TypicalP,

    /// <summary>Top-nσ.</summary>
    TopNSigma,

    /// <summary>Epsilon cutoff.</summary>
    EpsilonCutoff,

    /// <summary>Eta cutoff.</summary>
    EtaCutoff,

    /// <summary>Exclude top choices (skipped when greedy).</summary>
    Xtc,
}
