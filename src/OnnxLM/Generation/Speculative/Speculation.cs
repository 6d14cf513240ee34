namespace OnnxLM;

/// <summary>
/// One generation's speculative decoding, driven by <see cref="Generator.Decode"/>: after each chosen token it appends
/// that token and a draft in one run and hands out the logits row by row, so the decoding loop picks every token exactly
/// as it would without speculation. A draft token equal to the pick moves on to the next row without a model run; the
/// first mismatch (or the row after the last draft) truncates the session to the tokens actually chosen.
/// </summary>
internal sealed class Speculation : IDisposable
{
    private readonly GenerationSession _session;
    private readonly SpeculativeDecoding _settings;
    private readonly IDrafter _drafter;
    private readonly int _vocab;
    private readonly int[] _batch;   // the chosen token, then the draft
    private readonly float[] _rows;  // logits after each token of _batch, row-major
    private int _start;              // session length before the batch was appended
    private int _rowCount;           // rows of _rows that are valid; 0 when no batch is pending
    private int _row;                // the row the next token is chosen from
    private int _limit;              // the most draft tokens the next check may hold (adapts to how many are accepted)

    private Speculation(GenerationSession session, SpeculativeDecoding settings, IDrafter drafter)
    {
        _session = session;
        _settings = settings;
        _drafter = drafter;
        _vocab = session.Runtime.Info.VocabularySize;
        _batch = new int[settings.DraftLength + 1];
        _limit = settings.DraftLength;
        _rows = new float[_batch.Length * _vocab];
    }

    /// <summary>Draft tokens proposed so far.</summary>
    public int Drafted { get; private set; }

    /// <summary>Draft tokens the model agreed with.</summary>
    public int Accepted { get; private set; }

    /// <summary>Model runs that checked a draft.</summary>
    public int Verifications { get; private set; }

    /// <summary>The speculation <paramref name="options"/> ask for on this session, or null when they ask for none or the graph cannot use it.</summary>
    /// <exception cref="ArgumentException">The speculation settings are inconsistent or the draft model's vocabulary differs.</exception>
    public static Speculation? Create(ModelRuntime model, GenerationSession session, GenerationOptions options)
    {
        if (options.Speculation is not { } settings) return null;
        settings.Validate(model);
        if (model.Graph.SingleTokenWithPast) return null; // every token would still be its own run: nothing to save

        IDrafter drafter = settings.DraftModel is { } draftModel
            ? new DraftModelDrafter(draftModel.Runtime, session.MaxLength)
            : new PromptLookupDrafter(settings.MaxNGramSize, settings.MinNGramSize);
        return new Speculation(session, settings, drafter);
    }

    /// <summary>The logits the next token is chosen from: a row of the last checked batch, else the session's.</summary>
    public ReadOnlySpan<float> NextTokenLogits => _rowCount > 0 ? _rows.AsSpan(_row * _vocab, _vocab) : _session.NextTokenLogits;

    /// <summary>
    /// Moves past the token just chosen (the last of <paramref name="history"/>): the next row when it is the draft's next
    /// token, otherwise a new run of the token and a fresh draft of at most <paramref name="maxDraft"/> tokens.
    /// </summary>
    public void Advance(ReadOnlySpan<int> history, int maxDraft, CancellationToken cancellationToken)
    {
        var id = history[^1];
        if (_rowCount > 0)
        {
            if (_row + 1 < _rowCount && _batch[_row + 1] == id)
            {
                _row++;
                Accepted++;
                return;
            }

            // Hugging Face's "heuristic" schedule for assisted generation: two more after a fully accepted draft, one
            // fewer otherwise. Where drafts keep failing (free or sampled text) the checks shrink to one draft token,
            // whose run costs little more than the plain step it may save.
            _limit = _row + 1 == _rowCount ? Math.Min(_limit + 2, _batch.Length - 1) : Math.Max(_limit - 1, 1);
            Settle();
        }

        var draftLength = Math.Min(Math.Min(maxDraft, _limit), _session.MaxLength - _session.Length - 1);
        var drafted = draftLength > 0 ? _drafter.Draft(history, _batch.AsSpan(1, draftLength), cancellationToken) : 0;
        if (drafted == 0)
        {
            _session.Append(history[^1..], cancellationToken);
            return;
        }

        _batch[0] = id;
        _start = _session.Length;
        _session.AppendWithAllLogits(_batch.AsSpan(0, drafted + 1), _rows.AsSpan(0, (drafted + 1) * _vocab), cancellationToken);
        _rowCount = drafted + 1;
        _row = 0;
        Drafted += drafted;
        Verifications++;
    }

    /// <summary>
    /// Leaves the session as plain decoding would: holding the tokens up to the one the current row follows, with that
    /// row as its next-token logits (rejected draft tokens dropped without a model run).
    /// </summary>
    private void Settle()
    {
        var keep = _start + _row + 1;
        var rows = _rowCount;
        _rowCount = 0;
        if (rows > 0 && _session.Length > keep)
        {
            _session.Truncate(keep, _rows.AsSpan(_row * _vocab, _vocab));
        }
    }

    /// <summary>Settles the session (a generation that ends or is abandoned mid-batch) and frees the drafter.</summary>
    public void Dispose()
    {
        try
        {
            Settle();
        }
        catch (ObjectDisposedException)
        {
            // The session (or its model) was disposed under the generation: there is nothing left to keep consistent.
        }
        finally
        {
            _settings.AddCounts(Drafted, Accepted, Verifications);
            _drafter.Dispose();
        }
    }
}
