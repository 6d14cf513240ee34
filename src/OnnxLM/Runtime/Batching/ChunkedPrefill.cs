namespace OnnxLM;

/// <summary>
/// A group joining the batch with a prompt longer than one chunk: it is prefilled in a session of its own, one chunk per
/// turn of the decode loop, so the rows already decoding take a step between two chunks; once the whole prompt is in,
/// the session's cache joins the batch (<see cref="BatchedCache.AddFromSession"/>). Owned by the decode loop.
/// </summary>
internal sealed class ChunkedPrefill : IDisposable
{
    private readonly int _chunkSize;
    private int _done;

    public ChunkedPrefill(BatchSequence[] group, GenerationSession session, int chunkSize)
    {
        Group = group;
        Session = session;
        _chunkSize = chunkSize;
    }

    /// <summary>The sequences (n samples of one prompt) that join when the prefill ends.</summary>
    public BatchSequence[] Group { get; }

    /// <summary>The session holding the prompt's cache so far.</summary>
    public GenerationSession Session { get; }

    /// <summary>Whether the whole prompt has been prefilled.</summary>
    public bool Done => _done == Group[0].Prompt.Length;

    /// <summary>Prefills the next chunk of the prompt.</summary>
    public void RunChunk()
    {
        var prompt = Group[0].Prompt;
        var count = Math.Min(_chunkSize, prompt.Length - _done);
        Session.Append(prompt.AsSpan(_done, count), Group[0].CancellationToken);
        _done += count;
    }

    /// <summary>Frees the session (its run in flight, if any, is stopped: the session's dispose is thread-safe).</summary>
    public void Dispose() => Session.Dispose();
}
