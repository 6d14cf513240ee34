using OnnxLM.Sampling;

namespace OnnxLM;

/// <summary>
/// How <see cref="LanguageModel.GenerateAsync(string, GenerationOptions?, CancellationToken)"/> chooses tokens and when it stops.
/// With the defaults it decodes greedily (temperature 0) for up to 128 new tokens and stops at the model's EOS tokens.
/// Setters validate and throw <see cref="InvalidOptionException"/> naming the option.
/// </summary>
public sealed class GenerationOptions
{
    private IReadOnlyList<SamplerStage> _order = HuggingFaceSamplerOrder;

    /// <summary>The most tokens to generate (at least 1). Default 128. The session's maximum length is the prompt plus this (capped at the context length).</summary>
    public int MaxNewTokens { get; set => field = OptionCheck.AtLeast(value, 1, nameof(MaxNewTokens)); } = 128;

    /// <summary>
    /// Softmax temperature. 0 (the default) means greedy decoding (argmax, ties to the lowest id); above 0 samples
    /// from softmax(logits / temperature) after <see cref="TopK"/> and <see cref="TopP"/> (Hugging Face order).
    /// </summary>
    public float Temperature { get; set => field = OptionCheck.AtLeast(value, 0, nameof(Temperature), "0 = greedy"); }

    /// <summary>When sampling, keep only the K most likely tokens. 0 (the default) disables it.</summary>
    public int TopK { get; set => field = OptionCheck.AtLeast(value, 0, nameof(TopK)); }

    /// <summary>When sampling, keep the smallest set of most likely tokens whose probability reaches P, in (0, 1]. 1 (the default) disables it.</summary>
    public float TopP { get; set => field = OptionCheck.InRange(value, 0, 1, nameof(TopP), lowOpen: true); } = 1f;

    /// <summary>Seed of the random source used for sampling; the same seed, model and options give the same tokens. Null draws a random seed.</summary>
    public int? Seed { get; set; }

    /// <summary>Token ids that end generation. Null (the default) uses the model's EOS ids; an empty list never stops early.</summary>
    public IReadOnlyList<int>? StopTokenIds { get; set; }

    /// <summary>Whether to put the BOS token before the prompt. Null (the default) follows the tokenizer's configuration.</summary>
    public bool? AddBosToken { get; set; }

    /// <summary>When sampling, keep tokens with probability ≥ MinP × the top probability, in [0, 1]. 0 (the default) disables it.</summary>
    public float MinP { get; set => field = OptionCheck.InRange(value, 0, 1, nameof(MinP)); }

    /// <summary>When sampling, locally typical sampling mass in (0, 1]. 1 (the default) disables it.</summary>
    public float TypicalP { get; set => field = OptionCheck.InRange(value, 0, 1, nameof(TypicalP), lowOpen: true); } = 1f;

    /// <summary>When sampling, keep logits within n standard deviations of the maximum (top-nσ). Null (the default) disables it.</summary>
    public float? TopNSigma { get; set => field = value is null ? null : OptionCheck.AtLeast(value.Value, 0, nameof(TopNSigma)); }

    /// <summary>When sampling, mask tokens with probability below ε, in [0, 1). 0 (the default) disables it.</summary>
    public float EpsilonCutoff { get; set => field = OptionCheck.InRange(value, 0, 1, nameof(EpsilonCutoff), highOpen: true); }

    /// <summary>When sampling, eta cutoff ε in [0, 1) (floor min(ε, √ε·e^−H)). 0 (the default) disables it.</summary>
    public float EtaCutoff { get; set => field = OptionCheck.InRange(value, 0, 1, nameof(EtaCutoff), highOpen: true); }

    /// <summary>Hugging Face repetition penalty (&gt; 0; 1, the default, disables it): seen tokens' logits divided (positive) or multiplied (negative) by it.</summary>
    public float RepetitionPenalty { get; set => field = OptionCheck.Above(value, 0, nameof(RepetitionPenalty)); } = 1f;

    /// <summary>OpenAI presence penalty: subtracted from every token present in the last <see cref="PenaltyWindow"/> tokens. Default 0.</summary>
    public float PresencePenalty { get; set => field = OptionCheck.Finite(value, nameof(PresencePenalty)); }

    /// <summary>OpenAI frequency penalty: subtracted per occurrence in the last <see cref="PenaltyWindow"/> tokens. Default 0.</summary>
    public float FrequencyPenalty { get; set => field = OptionCheck.Finite(value, nameof(FrequencyPenalty)); }

    /// <summary>Tokens counted by presence/frequency penalties and searched by DRY (≥ 1). Default 64, as llama.cpp's penalty_last_n.</summary>
    public int PenaltyWindow { get; set => field = OptionCheck.AtLeast(value, 1, nameof(PenaltyWindow)); } = 64;

    /// <summary>
    /// A shape the output must have (<see cref="Constraints.OutputConstraint.Json"/>, <see cref="Constraints.OutputConstraint.JsonSchema"/>,
    /// <see cref="Constraints.OutputConstraint.Regex"/>, <see cref="Constraints.OutputConstraint.Choice(IReadOnlyList{string})"/>,
    /// <see cref="Constraints.OutputConstraint.Grammar"/>): tokens that cannot lead to a valid output are never picked and
    /// generation stops when the output is complete. Null (the default) for free text.
    /// </summary>
    public Constraints.OutputConstraint? Constraint { get; set; }

    /// <summary>
    /// Whether presence/frequency penalties count the prompt's tokens (default true, as llama.cpp, within
    /// <see cref="PenaltyWindow"/>). False counts generated tokens only, as OpenAI's API and vLLM define the penalties.
    /// </summary>
    public bool PenaltiesCountPrompt { get; set; } = true;

    /// <summary>
    /// Sets presence and frequency penalties as OpenAI's API defines them: subtracted per token of the reply so far
    /// (not the prompt, no window; <see cref="PenaltiesCountPrompt"/> false, <see cref="PenaltyWindow"/> unbounded) — what the
    /// OpenAI-compatible layers (IChatClient, the server) map their fields to. When both are null nothing changes.
    /// </summary>
    /// <param name="presence">OpenAI's <c>presence_penalty</c>, or null for 0.</param>
    /// <param name="frequency">OpenAI's <c>frequency_penalty</c>, or null for 0.</param>
    public void SetOpenAIPenalties(float? presence, float? frequency)
    {
        if (presence is null && frequency is null) return;
        PresencePenalty = presence ?? 0;
        FrequencyPenalty = frequency ?? 0;
        PenaltiesCountPrompt = false;
        PenaltyWindow = int.MaxValue;
    }

    /// <summary>A 64-bit seed (OpenAI's and Microsoft.Extensions.AI's) as a <see cref="Seed"/>: kept when it fits in 32 bits, else its two halves folded (xor).</summary>
    /// <param name="seed">The 64-bit seed.</param>
    public static int FoldSeed(long seed) => seed is >= int.MinValue and <= int.MaxValue ? (int)seed : unchecked((int)seed ^ (int)(seed >> 32));

    /// <summary>Forbid repeating any n-gram of this size (Hugging Face no_repeat_ngram_size). 0 (the default) disables it.</summary>
    public int NoRepeatNGramSize { get; set => field = OptionCheck.AtLeast(value, 0, nameof(NoRepeatNGramSize)); }

    /// <summary>Token id → value added to its logit (−∞ bans it).</summary>
    public IDictionary<int, float> LogitBias { get; } = new Dictionary<int, float>();

    /// <summary>Token sequences that must not be generated (Hugging Face bad_words_ids).</summary>
    public IList<IReadOnlyList<int>> BannedSequences { get; } = [];

    /// <summary>Token ids never generated.</summary>
    public IList<int> SuppressTokens { get; } = [];

    /// <summary>Tokens to generate before a stop token is allowed (stop tokens are masked until then). Default 0.</summary>
    public int MinNewTokens { get; set => field = OptionCheck.AtLeast(value, 0, nameof(MinNewTokens)); }

    /// <summary>DRY penalty multiplier (&gt; 0 enables DRY). Default 0.</summary>
    public float DryMultiplier { get; set => field = OptionCheck.AtLeast(value, 0, nameof(DryMultiplier)); }

    /// <summary>DRY exponential base (&gt; 1). Default 1.75.</summary>
    public float DryBase { get; set => field = OptionCheck.Above(value, 1, nameof(DryBase)); } = 1.75f;

    /// <summary>DRY: repeats shorter than this are not penalised (≥ 1). Default 2.</summary>
    public int DryAllowedLength { get; set => field = OptionCheck.AtLeast(value, 1, nameof(DryAllowedLength)); } = 2;

    /// <summary>DRY: strings whose tokens end a repeated sequence. Default newline, colon, double quote, asterisk (llama.cpp's).</summary>
    public IList<string> DrySequenceBreakers { get; } = ["\n", ":", "\"", "*"];

    /// <summary>XTC: chance per step of removing the top choices, in [0, 1]. 0 (the default) disables it.</summary>
    public float XtcProbability { get; set => field = OptionCheck.InRange(value, 0, 1, nameof(XtcProbability)); }

    /// <summary>XTC: probability a token needs to count as a top choice, in (0, 0.5]. Default 0.1.</summary>
    public float XtcThreshold { get; set => field = OptionCheck.InRange(value, 0, 0.5f, nameof(XtcThreshold), lowOpen: true); } = 0.1f;

    /// <summary>Mirostat version: 0 (off, the default), 1 or 2. When on (and sampling) it replaces the picker.</summary>
    public int Mirostat { get; set => field = value is 0 or 1 or 2 ? value : throw OptionCheck.Refuse(nameof(Mirostat), "must be 0, 1 or 2", value); }

    /// <summary>Mirostat target surprise in bits (&gt; 0). Default 5.</summary>
    public float MirostatTau { get; set => field = OptionCheck.Above(value, 0, nameof(MirostatTau)); } = 5f;

    /// <summary>Mirostat learning rate (&gt; 0). Default 0.1.</summary>
    public float MirostatEta { get; set => field = OptionCheck.Above(value, 0, nameof(MirostatEta)); } = 0.1f;

    /// <summary>
    /// Hugging Face <c>generate</c>: penalties first, then temperature before the truncation warpers
    /// (top-k, top-p, min-p, typical, epsilon, eta); the stages Hugging Face lacks (DRY, top-nσ, XTC) sit where
    /// llama.cpp puts them relative to the others. The default of <see cref="SamplerOrder"/>.
    /// </summary>
    public static IReadOnlyList<SamplerStage> HuggingFaceSamplerOrder { get; } =
    [
        SamplerStage.Penalties, SamplerStage.Dry, SamplerStage.Temperature, SamplerStage.TopNSigma, SamplerStage.TopK,
        SamplerStage.TopP, SamplerStage.MinP, SamplerStage.TypicalP, SamplerStage.EpsilonCutoff, SamplerStage.EtaCutoff, SamplerStage.Xtc,
    ];

    /// <summary>
    /// llama.cpp's default chain: penalties → DRY → top-nσ → top-k → typical → top-p → min-p → XTC → temperature
    /// (epsilon/eta, which llama.cpp lacks, after min-p).
    /// </summary>
    public static IReadOnlyList<SamplerStage> LlamaCppSamplerOrder { get; } =
    [
        SamplerStage.Penalties, SamplerStage.Dry, SamplerStage.TopNSigma, SamplerStage.TopK, SamplerStage.TypicalP,
        SamplerStage.TopP, SamplerStage.MinP, SamplerStage.EpsilonCutoff, SamplerStage.EtaCutoff, SamplerStage.Xtc, SamplerStage.Temperature,
    ];

    /// <summary>Order of the sampling stages: <see cref="HuggingFaceSamplerOrder"/> (default), <see cref="LlamaCppSamplerOrder"/> or your own list (no repeats).</summary>
    public IReadOnlyList<SamplerStage> SamplerOrder
    {
        get => _order;
        set
        {
            ArgumentNullException.ThrowIfNull(value, nameof(SamplerOrder));
            if (value.Distinct().Count() != value.Count) throw new InvalidOptionException(nameof(SamplerOrder), "SamplerOrder lists a stage twice.");
            _order = value;
        }
    }

    /// <summary>Strings that end generation when the generated text contains them (matched across token boundaries; the match is not emitted).</summary>
    public IList<string> StopSequences { get; } = [];

    /// <summary>Stop after this much wall time (finish reason <see cref="FinishReason.TimeLimit"/>). Null (the default) for no limit.</summary>
    public TimeSpan? MaxTime { get; set => field = value is null ? null : OptionCheck.Positive(value.Value, nameof(MaxTime)); }

    /// <summary>
    /// Speculative decoding: drafts of the next tokens (<see cref="SpeculativeDecoding"/>: prompt lookup, or a smaller
    /// draft model) checked by the model in one run, which can produce several tokens per run when the drafts are right.
    /// The tokens are the ones plain decoding chooses (greedy token for token, sampling with the same seed the same
    /// sequence), up to floating-point rounding of the multi-token run (see the remarks of <see cref="SpeculativeDecoding"/>).
    /// Null (the default) decodes one token per run.
    /// </summary>
    public SpeculativeDecoding? Speculation { get; set; }

    /// <summary>
    /// How many of the most likely tokens each <see cref="GeneratedToken"/> lists in <see cref="GeneratedToken.TopLogProbs"/>
    /// (0 to 100; default 0), from the same log-softmax of the raw logits as its <see cref="GeneratedToken.LogProb"/>.
    /// </summary>
    public int TopLogProbs { get; set => field = OptionCheck.InRange(value, 0, 100, nameof(TopLogProbs)); }

    /// <summary>Your own logit processors, run after the built-in stages, in list order.</summary>
    public IList<ILogitProcessor> LogitProcessors { get; } = [];

    /// <summary>Replaces the final choice of token (default: greedy when <see cref="Temperature"/> is 0, otherwise categorical sampling).</summary>
    public ITokenPicker? TokenPicker { get; set; }

    /// <summary>
    /// Checks what only a model can check: every token id the options name is inside its vocabulary, and the options
    /// do not contradict each other. Called when a generation starts, before any work.
    /// </summary>
    /// <exception cref="InvalidOptionException">An id is outside the vocabulary, a bias is NaN or +∞, a banned sequence is empty, or <see cref="MinNewTokens"/> exceeds <see cref="MaxNewTokens"/>.</exception>
    internal void Validate(int vocabularySize, IReadOnlyList<int> stopIds)
    {
        void Id(int id, string option)
        {
            if ((uint)id >= (uint)vocabularySize)
            {
                throw new InvalidOptionException(option, $"GenerationOptions.{option} names token {id}, outside the model's vocabulary of {vocabularySize} (ids 0–{vocabularySize - 1}).");
            }
        }

        foreach (var id in stopIds) Id(id, nameof(StopTokenIds));
        foreach (var (id, bias) in LogitBias)
        {
            Id(id, nameof(LogitBias));
            if (float.IsNaN(bias) || float.IsPositiveInfinity(bias))
            {
                throw new InvalidOptionException(nameof(LogitBias), $"GenerationOptions.LogitBias gives token {id} the bias {bias}; a bias must be a number or −∞.");
            }
        }

        foreach (var id in SuppressTokens) Id(id, nameof(SuppressTokens));
        foreach (var sequence in BannedSequences)
        {
            if (sequence is null || sequence.Count == 0) throw new InvalidOptionException(nameof(BannedSequences), "GenerationOptions.BannedSequences holds an empty sequence; every banned sequence needs at least one token.");
            foreach (var id in sequence) Id(id, nameof(BannedSequences));
        }

        if (MinNewTokens > MaxNewTokens)
        {
            throw new InvalidOptionException(nameof(MinNewTokens), $"GenerationOptions.MinNewTokens ({MinNewTokens}) is more than MaxNewTokens ({MaxNewTokens}); the end token could never be allowed.");
        }
    }

    /// <summary>A copy of these options with another seed (processor and collection settings shared).</summary>
    internal GenerationOptions WithSeed(int seed)
    {
        var copy = (GenerationOptions)MemberwiseClone();
        copy.Seed = seed;
        return copy;
    }
}
