using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// One sequence being decoded: its tokens and the model's key/value cache for them. Append tokens (the first
/// call prefills them all in one run), read the next-token logits, rewind or fork. On the CPU the cache lives in
/// buffers the session owns (<see cref="HostKvCache"/>): ONNX Runtime writes each run's present straight into them and
/// a decode step allocates nothing. On CUDA the present outputs stay in device memory and become the next past as they are
/// (<see cref="DeviceKvCache"/>). Either way the session holds one <see cref="IKvCache"/> and feeds the graph through a <see cref="GraphFeed"/>.
/// Not thread-safe: use one session per sequence. Dispose it to free the cache's native memory.
/// </summary>
public sealed class GenerationSession : IDisposable
{
    private readonly ModelRuntime _model;
    private readonly DecoderGraph _graph;
    private readonly int[] _tokens;
    private readonly float[] _nextLogits;
    private readonly SessionRunner _runner; // the feed, binding, logits and cache of each run
    private int _length;
    private bool _hasLogits;
    private int _busy;
    private int _closing; // 1 once Dispose has begun: no new call may start

    internal GenerationSession(ModelRuntime model, int maxLength)
    {
        _model = model;
        _graph = model.Graph;
        MaxLength = maxLength;
        _tokens = new int[maxLength];
        _nextLogits = new float[model.Info.VocabularySize];
        _runner = new SessionRunner(_graph, model.Info, maxLength);
        model.Register(this);
    }

    /// <summary>The runtime of the model this session decodes with.</summary>
    internal ModelRuntime Runtime => _model;

    /// <summary>The most tokens this session may hold (prompt plus generated).</summary>
    public int MaxLength { get; }

    /// <summary>Tokens in the sequence (and in the cache).</summary>
    public int Length => _length;

    /// <summary>The sequence's token ids.</summary>
    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, _length);

    /// <summary>
    /// Raw logits (float32, before any sampling) for the token after the last one appended; empty before the
    /// first <see cref="Append(ReadOnlySpan{int}, CancellationToken)"/>. Valid until the next call that changes the session.
    /// </summary>
    public ReadOnlySpan<float> NextTokenLogits => _hasLogits ? _nextLogits : ReadOnlySpan<float>.Empty;

    /// <summary>Appends one token and runs the model on it.</summary>
    /// <param name="tokenId">A token id in [0, vocabulary size).</param>
    public void Append(int tokenId) => Append([tokenId], CancellationToken.None);

    /// <summary>Appends tokens and runs the model over all of them in one pass (a prefill when the session is empty).</summary>
    /// <param name="tokenIds">Token ids in [0, vocabulary size).</param>
    /// <param name="cancellationToken">Stops the run; the session is left as it was before the call.</param>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    /// <exception cref="ContextLengthExceededException">The session would grow past <see cref="MaxLength"/>.</exception>
    public void Append(ReadOnlySpan<int> tokenIds, CancellationToken cancellationToken = default)
    {
        using var _ = Enter();
        Run(tokenIds, allLogits: default, cancellationToken);
    }

    /// <summary>
    /// Shortens the sequence to its first <paramref name="length"/> tokens, dropping the rest from the cache.
    /// <see cref="NextTokenLogits"/> then belongs to the new last token.
    /// </summary>
    public void Rewind(int length)
    {
        using var _ = Enter();
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, _length);
        if (length == _length)
        {
            return;
        }

        if (length == 0)
        {
            Reset();
            return;
        }

        // Keep length-1 tokens in the cache, then re-run the last kept token to get its logits back.
        KeepCache(length - 1);
        var last = _tokens[length - 1];
        _length = length - 1;
        _hasLogits = false;
        Run([last], default, CancellationToken.None);
    }

    /// <summary>
    /// Shortens the sequence to <paramref name="length"/> tokens when the caller already has the logits that follow
    /// the new last token (a row of an <see cref="AppendWithAllLogits(ReadOnlySpan{int}, Span{float}, CancellationToken)"/> run):
    /// no model run is needed. Speculative decoding uses it to drop rejected draft tokens.
    /// </summary>
    internal void Truncate(int length, ReadOnlySpan<float> nextLogits)
    {
        using var _ = Enter();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, _length);
        if (nextLogits.Length != _nextLogits.Length)
        {
            throw new ArgumentException($"Expected {_nextLogits.Length} logits, got {nextLogits.Length}.", nameof(nextLogits));
        }

        if (length < _length)
        {
            KeepCache(length);
            _length = length;
        }

        nextLogits.CopyTo(_nextLogits);
        _hasLogits = true;
    }

    /// <summary>Drops cache positions from <paramref name="keep"/> on (the caller updates the length); no prefill is re-run.</summary>
    private void KeepCache(int keep) => _runner.Cache.Truncate(_length, keep);

    /// <summary>
    /// Makes the session hold <paramref name="promptTokenIds"/>, keeping the longest prefix of it that the session already
    /// holds and running the model over the rest only (the last prompt token always runs: its logits pick the next token).
    /// A conversation's next turn, or a prompt that shares a long preamble with the previous one, costs its new tokens,
    /// not the whole prompt. Follow it with <see cref="GenerateStreamingAsync"/>.
    /// </summary>
    /// <param name="promptTokenIds">The whole prompt (not empty), ids in [0, vocabulary size).</param>
    /// <param name="cancellationToken">Stops the run over the new tokens.</param>
    /// <returns>How many leading prompt tokens were already in the cache and were not run again.</returns>
    /// <exception cref="ArgumentException">The prompt is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    /// <exception cref="ContextLengthExceededException">The prompt is longer than <see cref="MaxLength"/>.</exception>
    public int Prefill(ReadOnlySpan<int> promptTokenIds, CancellationToken cancellationToken = default)
    {
        if (promptTokenIds.IsEmpty) throw new ArgumentException("The prompt has no tokens.", nameof(promptTokenIds));
        var keep = Math.Min(Tokens.CommonPrefixLength(promptTokenIds), promptTokenIds.Length - 1);
        if (keep < Length) Rewind(keep);
        Append(promptTokenIds[keep..], cancellationToken);
        return keep;
    }

    /// <summary>
    /// Generates after the tokens the session holds (a prompt appended or <see cref="Prefill"/>ed), yielding each token as
    /// soon as it is chosen; the tokens generated stay in the session (except the last, which stopped it), so the next
    /// <see cref="Prefill"/> can reuse them. The model runs on a thread-pool thread; leaving the enumeration early stops it.
    /// One generation at a time per session.
    /// </summary>
    /// <param name="options">Sampling and stopping options; null for greedy decoding of up to 128 tokens.</param>
    /// <param name="defaultStopTokenIds">
    /// The tokens to stop at when <see cref="GenerationOptions.StopTokenIds"/> is null (<see cref="LanguageModel.EndOfTurnTokenIds"/>
    /// for a chat reply); null for the model's EOS.
    /// </param>
    /// <param name="cancellationToken">Stops generation with <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="InvalidOperationException">The session holds no tokens.</exception>
    public IAsyncEnumerable<GeneratedToken> GenerateStreamingAsync(GenerationOptions? options = null, IReadOnlyList<int>? defaultStopTokenIds = null,
        CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _closing) != 0, this);
        if (_length == 0) throw new InvalidOperationException("The session holds no tokens: append or prefill a prompt first.");
        return Decoding.StreamInSession(this, null, options ?? new GenerationOptions(), defaultStopTokenIds, out _, cancellationToken);
    }

    /// <summary>Creates an independent copy of this session (tokens, cache and logits) that can diverge from it.</summary>
    public GenerationSession Fork()
    {
        using var _ = Enter();
        var fork = new GenerationSession(_model, MaxLength);
        try
        {
            if (_length == 0)
            {
                return fork;
            }

            fork._runner.Cache.CopyFrom(_runner.Cache, _length); // a copy where the cache lives (device memory on CUDA)
            _tokens.AsSpan(0, _length).CopyTo(fork._tokens);
            _nextLogits.CopyTo(fork._nextLogits);
            fork._length = _length;
            fork._hasLogits = _hasLogits;
            return fork;
        }
        catch
        {
            fork.Dispose();
            throw;
        }
    }

    /// <summary>Token positions the model has run over in this session (for tests: a rewind or fork runs no prefill again).</summary>
    internal long TokensRun { get; private set; }

    /// <summary>The host cache (CPU sessions), for tests of buffer reuse and the batch's join; null on CUDA.</summary>
    internal HostKvCache? HostCache => _runner.Cache as HostKvCache;

    /// <summary>
    /// Frees what the session holds beyond its cache (the swap scheme's second buffer), for a session that waits between
    /// turns; the next call allocates it again.
    /// </summary>
    internal void Park()
    {
        // Best effort and never throwing (it runs in finally blocks): skipped when disposed or in use.
        if (Volatile.Read(ref _closing) != 0 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0) return;
        try
        {
            if (Volatile.Read(ref _closing) == 0) _runner.Cache.ReleaseSpare();
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>Whether a call is using the session right now (for tests of concurrent misuse).</summary>
    internal bool IsBusy => Volatile.Read(ref _busy) != 0;

    /// <summary>Empties the sequence and its cache.</summary>
    public void Clear()
    {
        using var _ = Enter();
        Reset();
    }

    /// <summary>
    /// Runs the model over <paramref name="tokenIds"/> and copies the logits of the new positions from
    /// <paramref name="firstRow"/> on (row-major, [tokenIds.Length − firstRow, vocab]) into <paramref name="logits"/>. Used by scoring.
    /// </summary>
    internal void AppendWithAllLogits(ReadOnlySpan<int> tokenIds, Span<float> logits, int firstRow, CancellationToken cancellationToken)
    {
        using var _ = Enter();
        Run(tokenIds, logits, cancellationToken, firstRow);
    }

    /// <summary>Runs the model over <paramref name="tokenIds"/> and copies every new position's logits into <paramref name="logits"/>.</summary>
    internal void AppendWithAllLogits(ReadOnlySpan<int> tokenIds, Span<float> logits, CancellationToken cancellationToken) =>
        AppendWithAllLogits(tokenIds, logits, 0, cancellationToken);

    private void Run(ReadOnlySpan<int> tokenIds, Span<float> allLogits, CancellationToken cancellationToken, int firstRow = 0)
    {
        var n = tokenIds.Length;
        if (n == 0)
        {
            throw new ArgumentException("At least one token id is needed.", nameof(tokenIds));
        }

        var vocab = _model.Info.VocabularySize;
        GraphRun.CheckTokenIds(tokenIds, vocab, nameof(tokenIds));

        var total = _length + n;
        if (total > MaxLength)
        {
            throw new ContextLengthExceededException(total, MaxLength,
                $"Appending {n} token(s) to {_length} would make {total}, more than this session's maximum length {MaxLength}" +
                (MaxLength == _model.Info.ContextLength ? " (the model's context length)." : $" (the model's context length is {_model.Info.ContextLength})."));
        }

        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            _runner.Run(tokenIds, _length, allLogits, firstRow, _nextLogits, cancellationToken);
        }
        catch (OnnxRuntimeException e) when (_length > 0 && n > 1 && !_graph.SingleTokenWithPast && Volatile.Read(ref _closing) == 0 && !cancellationToken.IsCancellationRequested)
        {
            // Some exported graphs build their attention mask for one new token when a past is given.
            _graph.SingleTokenWithPast = true;
            _graph.Logger.LogWarning("{Graph} failed on {Count} new tokens after a past of {Past} ({Error}); it now runs appended tokens one at a time, with the same results.",
                _model.Info.GraphPath, n, _length, e.Message);
            Run(tokenIds, allLogits, cancellationToken, firstRow);
            return;
        }
        catch (OnnxRuntimeException) when (Volatile.Read(ref _closing) != 0)
        {
            throw new ObjectDisposedException(nameof(GenerationSession), "The session was disposed while the model was running.");
        }
        catch (OnnxRuntimeException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ModelRunException(
                $"ONNX Runtime failed running '{_model.Info.GraphPath}' on {n} new token(s) after a cache of {_length} (input_ids [1, {n}], past [.., {_length}, ..]): {e.Message}",
                _model.Info.GraphPath, e);
        }

        TokensRun += n;
        tokenIds.CopyTo(_tokens.AsSpan(_length));
        _length = total;
        _hasLogits = true;
    }

    private void Reset()
    {
        _runner.Cache.Clear();
        _length = 0;
        _hasLogits = false;
    }

    /// <summary>Marks the session in use until the scope is disposed; a second concurrent call fails.</summary>
    internal UseScope Enter()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _closing) != 0, this);
        _model.ThrowIfDisposed();
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            throw new InvalidOperationException(
                "This GenerationSession is already in use by another call. A session holds one sequence and is not thread-safe; create one session per concurrent sequence.");
        }

        if (Volatile.Read(ref _closing) != 0)
        {
            Volatile.Write(ref _busy, 0);
            throw new ObjectDisposedException(nameof(GenerationSession));
        }

        return new UseScope(this);
    }

    internal readonly struct UseScope(GenerationSession session) : IDisposable
    {
        public void Dispose() => Volatile.Write(ref session._busy, 0);
    }

    /// <summary>
    /// Frees the cache's native memory. Safe from any thread at any time: a run in flight is stopped (its caller gets
    /// <see cref="ObjectDisposedException"/>) and has finished before the memory is freed.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        _model.Unregister(this);
        // Stop a run in flight, then wait for its call to leave before freeing what it uses.
        var spin = new SpinWait();
        while (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            _runner.Terminate();
            spin.SpinOnce(sleep1Threshold: 20);
        }

        _runner.Dispose();
    }
}
