using System.Numerics.Tensors;

namespace OnnxLM;

/// <summary>
/// Drafts with a smaller model of the same tokenizer: its greedy continuation, one draft-model run per token. It keeps
/// its own session in step with the sequence, re-running only the tokens it has not seen (the accepted drafts it did
/// not append itself and the target's correction).
/// </summary>
internal sealed class DraftModelDrafter : IDrafter
{
    private readonly GenerationSession _session;

    public DraftModelDrafter(ModelRuntime draftModel, int maxLength) =>
        _session = draftModel.CreateSession(Math.Min(maxLength, draftModel.Info.ContextLength));

    /// <summary>How many tokens the draft session can hold.</summary>
    public int MaxLength => _session.MaxLength;

    public int Draft(ReadOnlySpan<int> history, Span<int> draft, CancellationToken cancellationToken)
    {
        // The draft session ends up holding history + draft[..^1]; it must have room for that.
        var room = _session.MaxLength - history.Length + 1;
        if (room <= 0) return 0;
        draft = draft[..Math.Min(draft.Length, room)];
        Sync(history, cancellationToken);
        for (var i = 0; ; i++)
        {
            draft[i] = TensorPrimitives.IndexOfMax(_session.NextTokenLogits);
            if (i + 1 == draft.Length) return draft.Length;
            _session.Append(draft.Slice(i, 1), cancellationToken);
        }
    }

    /// <summary>Makes the draft session hold exactly <paramref name="history"/>, with the logits after it.</summary>
    private void Sync(ReadOnlySpan<int> history, CancellationToken cancellationToken)
    {
        var common = _session.Tokens.CommonPrefixLength(history);
        if (common == history.Length)
        {
            if (_session.Length > common) _session.Rewind(common); // one run gives back the logits after the last kept token
            return;
        }

        if (common == 0)
        {
            _session.Clear();
        }
        else if (common < _session.Length)
        {
            // The logits handed over are never read: the append right after replaces them.
            _session.Truncate(common, _session.NextTokenLogits);
        }

        _session.Append(history[common..], cancellationToken);
    }

    public void Dispose() => _session.Dispose();
}
