namespace OnnxLM;

/// <summary>
/// Speculative decoding for <see cref="GenerationOptions.Speculation"/>: cheap guesses of the next few tokens (drafts)
/// are checked by the model in one multi-token run; the tokens it agrees with are kept, the rest are rewound. Two
/// sources of drafts: <b>prompt lookup</b> (the default, no second model: the text after the latest earlier occurrence
/// of the last few tokens, which pays off when the output copies its input — quoting, editing, summarising, code) and a
/// <b>draft model</b> (<see cref="DraftModel"/>, a smaller model with the same tokenizer, proposing its greedy continuation).
/// </summary>
/// <remarks>
/// The output is the one plain decoding gives: every token is still chosen by the generation's own sampling pipeline
/// (processors, penalties, constraints, picker, seed) from the model's logits at its position, in order; a draft token
/// only saves the model run that would have produced those logits. Greedy output is therefore token-for-token the same,
/// and sampled output with a seed is the same sequence as without speculation. For sampling this is the standard
/// acceptance rule of speculative sampling (Leviathan et al., Chen et al.) with a draft distribution that is a point mass
/// on the draft token: accept it with probability min(1, p/q) = p(draft), otherwise draw from the residual, p with the
/// draft removed and renormalised — exactly what drawing from p and comparing with the draft does. The one difference a
/// multi-token run makes is floating-point rounding: its logits can differ from one-token runs in the last bits (about
/// 1e-6 on kjv-tiny), which changes a greedy choice only at a near-tie and a sampled draw only when the random point falls
/// that close to a boundary between candidates (once in 700 draws with all 4,096 tokens alive, in our measurements) —
/// the same kind of difference as another CPU or batch size gives; the distribution is unchanged. Graphs whose
/// MatMulNBits weights multiply int8 activations (<c>accuracy_level</c> 4, <c>onnxlm convert --quantize</c>'s default) are
/// the exception in size, not in kind: ONNX Runtime quantizes the activations of a one-row and a several-row product
/// differently, so their logits differ by a fraction of that quantization's own error (up to 0.13 against a spread of 8
/// on the Llama-3.2-1B shape, where int8 activations move them 0.2 from float ones), and greedy output can part at a
/// close call. <c>--accuracy-level 1</c> graphs agree to 3·10⁻⁵, at about 0.6× the decode speed.
/// <para>
/// Graphs that can only append one token at a time after a past decode without it (same output), as it could not save a
/// run there. Rejected draft tokens are cut from the cache where it lives (host or device memory), without a model run.
/// </para>
/// </remarks>
public sealed class SpeculativeDecoding
{
    private LanguageModel? _draftModel;
    private ModelRuntime? _checkedTarget;
    private long _drafted;
    private long _accepted;
    private long _verifications;

    /// <summary>
    /// The most draft tokens checked per model run (≥ 1). Default 10, as Hugging Face's prompt_lookup_num_tokens. Within
    /// it the length adapts as Hugging Face's heuristic schedule (two more after a fully accepted draft, one fewer
    /// otherwise, at least one); near the end it is capped by the tokens still to generate and the session's room.
    /// </summary>
    public int DraftLength { get; set => field = OptionCheck.AtLeast(value, 1, nameof(DraftLength)); } = 10;

    /// <summary>
    /// Prompt lookup: the longest run of trailing tokens searched for earlier in the sequence (≥ 1). Default 3; longer runs
    /// are tried first, down to <see cref="MinNGramSize"/>.
    /// </summary>
    public int MaxNGramSize { get; set => field = OptionCheck.AtLeast(value, 1, nameof(MaxNGramSize)); } = 3;

    /// <summary>
    /// Prompt lookup: the shortest run of trailing tokens that may propose a draft (≥ 1, at most <see cref="MaxNGramSize"/>
    /// when generation starts). Default 1, as Hugging Face; larger values draft less often but more reliably.
    /// </summary>
    public int MinNGramSize { get; set => field = OptionCheck.AtLeast(value, 1, nameof(MinNGramSize)); } = 1;

    /// <summary>
    /// A smaller model with the generating model's tokenizer that proposes the drafts (its greedy continuation), instead
    /// of prompt lookup. Null (the default) uses prompt lookup. The caller keeps ownership: it must outlive the generations
    /// that use it. A tokenizer or vocabulary that differs from the generating model's is rejected when generation starts.
    /// Drafting costs one draft-model run per draft token, so it pays only when the draft model is much faster than the
    /// generating one.
    /// </summary>
    public LanguageModel? DraftModel
    {
        get => _draftModel;
        set
        {
            _draftModel = value;
            _checkedTarget = null;
        }
    }

    /// <summary>
    /// Checks the settings against the generating model: the n-gram bounds are ordered and a draft model has the same
    /// vocabulary — the same size and the same piece for every id.
    /// </summary>
    /// <remarks>Generation calls it when it starts; call it yourself to refuse a mismatched draft model before any work.</remarks>
    /// <param name="target">The model that will generate with these settings.</param>
    /// <exception cref="InvalidOptionException">The bounds contradict each other or the draft model's vocabulary differs; <see cref="InvalidOptionException.OptionName"/> is <c>MinNGramSize</c> or <c>DraftModel</c> and the reason names what differs.</exception>
    public void Validate(LanguageModel target)
    {
        ArgumentNullException.ThrowIfNull(target);
        Validate(target.Runtime);
    }

    /// <summary>The checks of <see cref="Validate(LanguageModel)"/> against the generating model's runtime, as generation runs them.</summary>
    internal void Validate(ModelRuntime target)
    {
        if (MinNGramSize > MaxNGramSize)
        {
            throw new InvalidOptionException(nameof(MinNGramSize), $"SpeculativeDecoding.MinNGramSize ({MinNGramSize}) is more than MaxNGramSize ({MaxNGramSize}).");
        }

        if (_draftModel is not { } draft || ReferenceEquals(_checkedTarget, target)) return;
        if (draft.Info.VocabularySize != target.Info.VocabularySize)
        {
            throw new InvalidOptionException(
                nameof(DraftModel),
                $"SpeculativeDecoding.DraftModel has a vocabulary of {draft.Info.VocabularySize} logits, the generating model {target.Info.VocabularySize}; a draft model must share the generating model's tokenizer.");
        }

        if (draft.HasTokenizer != target.HasTokenizer)
        {
            throw new InvalidOptionException(
                nameof(DraftModel),
                $"SpeculativeDecoding.DraftModel {(draft.HasTokenizer ? "has" : "has no")} tokenizer while the generating model {(target.HasTokenizer ? "has" : "has none")}; a draft model must share the generating model's tokenizer.");
        }

        if (draft.HasTokenizer && !ReferenceEquals(draft.Tokenizer, target.Tokenizer))
        {
            var a = draft.Tokenizer;
            var b = target.Tokenizer;
            if (a.VocabularySize != b.VocabularySize)
            {
                throw new InvalidOptionException(
                    nameof(DraftModel),
                    $"SpeculativeDecoding.DraftModel's tokenizer has {a.VocabularySize} tokens, the generating model's {b.VocabularySize}; a draft model must share the generating model's tokenizer.");
            }

            for (var id = 0; id < a.VocabularySize; id++)
            {
                var pa = Piece(a, id);
                var pb = Piece(b, id);
                if (!string.Equals(pa, pb, StringComparison.Ordinal))
                {
                    throw new InvalidOptionException(
                        nameof(DraftModel),
                        $"SpeculativeDecoding.DraftModel's tokenizer maps id {id} to {Show(pa)}, the generating model's to {Show(pb)}; a draft model must share the generating model's tokenizer.");
                }
            }
        }

        _checkedTarget = target;
    }

    /// <summary>Totals over the generations that used these settings, for tests and benchmarks: draft tokens proposed, accepted, and checking runs.</summary>
    internal (long Drafted, long Accepted, long Verifications) Counts => (Interlocked.Read(ref _drafted), Interlocked.Read(ref _accepted), Interlocked.Read(ref _verifications));

    internal void AddCounts(int drafted, int accepted, int verifications)
    {
        Interlocked.Add(ref _drafted, drafted);
        Interlocked.Add(ref _accepted, accepted);
        Interlocked.Add(ref _verifications, verifications);
    }

    private static string? Piece(TextTokenizer tokenizer, int id)
    {
        try
        {
            return tokenizer.TokenToPiece(id);
        }
        catch (ArgumentOutOfRangeException)
        {
            return null; // a hole in the vocabulary
        }
    }

    private static string Show(string? piece) => piece is null ? "no piece" : $"\"{piece}\"";
}
