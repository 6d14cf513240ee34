using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace OnnxLM;

/// <summary>
/// Continuous batching for one model: concurrent generations are rows of one <see cref="BatchedCache"/> and one decode loop
/// thread runs the model once per step for all of them. New requests join between steps, prefilled in one run with the
/// others joining at that step (up to <see cref="LanguageModelOptions.MaxBatchSize"/> rows; the rest wait in order, and a
/// group of n samples joins whole); a row leaves when its sequence stops,
/// reaches its length or is cancelled, without disturbing the others. A prompt longer than
/// <see cref="LanguageModelOptions.PrefillChunkSize"/> is prefilled in chunks in a session of its own, one chunk per turn of
/// the loop with a decode step of the running rows between two chunks, and joins when its prefill ends. Each row keeps its own sampler, seed, stop rules and
/// streaming text (<see cref="TokenStepper"/>), so its tokens are those of running it alone (greedy ids identical, logits
/// equal up to the summation order of batched matmuls). Disposing stops the loop; unfinished requests get
/// <see cref="ObjectDisposedException"/>.
/// </summary>
internal sealed class BatchScheduler : IDisposable
{
    private readonly ModelRuntime _model;
    private readonly int _maxBatchSize;
    private readonly int _prefillChunkSize;
    private readonly ILogger _logger;
    private readonly BatchedCache _cache;
    private readonly object _gate = new();
    private readonly Queue<BatchSequence[]> _waiting = new();
    private readonly List<BatchSequence> _active = [];
    private readonly Queue<ChunkedPrefill> _prefilling = new(); // long prompts being prefilled a chunk per turn, in order
    private ChunkedPrefill? _chunkInFlight;                      // the one running a chunk now, for Dispose to stop
    private readonly List<bool> _leaving = [];
    private int[] _nextIds = [];
    private GenerationSession? _solo; // a lone request decodes in a session of its own (the zero-waste step), not a batch of one

    /// <summary>Whether a lone request is decoding in its own session right now (for tests).</summary>
    internal bool DecodingAlone => Volatile.Read(ref _solo) is not null;

    /// <summary>Groups submitted and not yet taken by the loop (for tests).</summary>
    internal int WaitingGroups
    {
        get
        {
            lock (_gate) return _waiting.Count;
        }
    }

    /// <summary>Decode steps run so far (batched or alone), for tests that count steps.</summary>
    internal int Steps { get; private set; }

    /// <summary>Called on the loop thread after each prefill chunk with <see cref="Steps"/> at that point (for tests).</summary>
    internal Action<int>? ChunkPrefilled { get; set; }
    private Thread? _thread;
    private volatile bool _disposed;

    public BatchScheduler(ModelRuntime model, int maxBatchSize, int prefillChunkSize, ILogger logger)
    {
        _model = model;
        _maxBatchSize = maxBatchSize;
        _prefillChunkSize = prefillChunkSize;
        _logger = logger;
        _cache = new BatchedCache(model);
    }

    /// <summary>Generates after <paramref name="prompt"/> as one row of the batch and returns the whole result.</summary>
    public async Task<GenerationResult> GenerateAsync(int[] prompt, GenerationOptions options, IReadOnlyList<int>? defaultStops, CancellationToken cancellationToken)
    {
        var sequence = Create(prompt, options, defaultStops, cancellationToken, collect: true);
        Submit([sequence]);
        return await CollectAsync(sequence, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Generates after <paramref name="prompt"/> as one row of the batch, yielding tokens as they are chosen.</summary>
    public async IAsyncEnumerable<GeneratedToken> StreamAsync(int[] prompt, GenerationOptions options, IReadOnlyList<int>? defaultStops,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // Leaving the enumeration early cancels the row through this source, so it stops costing batch steps.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sequence = Create(prompt, options, defaultStops, stop.Token);
        Submit([sequence]);
        try
        {
            await foreach (var token in sequence.Tokens.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return token;
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// <paramref name="count"/> samples of one prompt, prefilled once and decoded as <paramref name="count"/> rows; sample i
    /// uses seed + i when the options have a seed.
    /// </summary>
    public async Task<IReadOnlyList<GenerationResult>> GenerateManyAsync(int[] prompt, int count, GenerationOptions options, CancellationToken cancellationToken)
    {
        var group = new BatchSequence[count];
        for (var i = 0; i < count; i++)
        {
            group[i] = Create(prompt, options.Seed is { } seed ? options.WithSeed(unchecked(seed + i)) : options, null, cancellationToken, collect: true);
        }

        Submit(group);
        var results = new GenerationResult[count];
        for (var i = 0; i < count; i++)
        {
            results[i] = await CollectAsync(group[i], cancellationToken).ConfigureAwait(false);
        }

        return results;
    }

    private BatchSequence Create(int[] prompt, GenerationOptions options, IReadOnlyList<int>? defaultStops, CancellationToken cancellationToken, bool collect = false)
    {
        // Checked here, on the caller's side: a bad id fails its own request, never a prefill shared with others.
        GraphRun.CheckTokenIds(prompt, _model.Info.VocabularySize, "tokenIds");
        var maxLength = (int)Math.Min((long)prompt.Length + options.MaxNewTokens, _model.Info.ContextLength);
        return new BatchSequence(prompt, new TokenStepper(_model, prompt, prompt, maxLength, options, defaultStops), cancellationToken)
        {
            Collected = collect ? [] : null,
        };
    }

    /// <summary>Waits for a collecting sequence to end (one wake-up, not one per token) and returns its result.</summary>
    private static async Task<GenerationResult> CollectAsync(BatchSequence sequence, CancellationToken cancellationToken)
    {
        await sequence.Tokens.Reader.Completion.WaitAsync(cancellationToken).ConfigureAwait(false);
        return Generator.ToResult(sequence.Collected!, sequence.Prompt.Length);
    }

    private void Submit(BatchSequence[] group)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, _model);
            _model.ThrowIfDisposed();
            _waiting.Enqueue(group);
            if (_thread is null)
            {
                _thread = new Thread(Loop) { IsBackground = true, Name = "OnnxLM batch decode loop" };
                _thread.Start();
            }

            Monitor.Pulse(_gate);
        }
    }

    private void Loop()
    {
        while (!_disposed)
        {
            try
            {
                Leave();
                var joining = TakeWaiting();
                if (joining.Count == 0 && _active.Count == 0 && _prefilling.Count == 0)
                {
                    lock (_gate)
                    {
                        while (_waiting.Count == 0 && !_disposed) Monitor.Wait(_gate);
                    }

                    continue;
                }

                if (joining.Count == 1 && joining[0].Length == 1 && _active.Count == 0 && _prefilling.Count == 0)
                {
                    StartSolo(joining[0][0]);
                }
                else
                {
                    if (joining.Count > 0) MoveSoloToBatch();
                    Join(joining);
                }

                PrefillChunk();
                Leave();
                if (_active.Count > 0 && !_disposed)
                {
                    if (_solo is not null) StepSolo();
                    else Step();
                }
            }
            catch (Exception e) when (!_disposed)
            {
                // A failed model run (or a bug): the rows in the batch end with the error and the loop goes on with an empty
                // batch, so that no request is left waiting on a channel that would never complete.
                _logger.LogError(e, "A step of the batch decode loop of {Graph} failed; its {Rows} sequence(s) end with the error.", _model.Info.GraphPath, _active.Count);
                foreach (var sequence in _active) sequence.Complete(e);
                _active.Clear();
                _cache.Select([]);
                EndSolo();
            }
            catch (Exception) when (_disposed)
            {
                break; // a run stopped by Dispose: the requests get ObjectDisposedException below
            }
        }

        FailAll(new ObjectDisposedException(nameof(LanguageModel), "The model was disposed while generating."));
    }

    /// <summary>Groups that fit in the free rows, in arrival order; a group larger than the batch runs when the batch is empty.</summary>
    private List<BatchSequence[]> TakeWaiting()
    {
        var taken = new List<BatchSequence[]>();
        lock (_gate)
        {
            var rows = _active.Count;
            foreach (var prefill in _prefilling) rows += prefill.Group.Length;
            while (_waiting.Count > 0 && (rows == 0 || rows + _waiting.Peek().Length <= _maxBatchSize))
            {
                var group = _waiting.Dequeue();
                taken.Add(group);
                rows += group.Length;
            }
        }

        return taken;
    }

    /// <summary>
    /// Prefills the prompts of the joining groups, several in one right-padded run (within the logit size limit of
    /// <see cref="PaddedBatch"/>), adds their rows and emits each row's first token.
    /// </summary>
    private void Join(List<BatchSequence[]> joining)
    {
        var groups = new List<BatchSequence[]>(joining.Count);
        foreach (var group in joining)
        {
            if (group[0].CancellationToken.IsCancellationRequested)
            {
                foreach (var sequence in group) sequence.Cancel();
            }
            else
            {
                groups.Add(group);
            }
        }

        var vocab = _model.Info.VocabularySize;
        var chunk = new List<BatchSequence[]>();
        var width = 0;
        foreach (var group in groups)
        {
            if (group[0].Prompt.Length > _prefillChunkSize)
            {
                StartChunkedPrefill(group);
                continue;
            }

            var next = Math.Max(width, group[0].Prompt.Length);
            if (chunk.Count > 0 && (long)(chunk.Count + 1) * next * vocab > PaddedBatch.MaxLogitElements)
            {
                Prefill(chunk);
                chunk.Clear();
                next = group[0].Prompt.Length;
            }

            chunk.Add(group);
            width = next;
        }

        if (chunk.Count > 0) Prefill(chunk);
    }

    private void Prefill(List<BatchSequence[]> groups)
    {
        // One group alone can be cancelled inside its prefill; a run shared by several requests is not stopped for one of them.
        var cancellationToken = groups.Count == 1 ? groups[0][0].CancellationToken : CancellationToken.None;
        try
        {
            _cache.Add(groups.Select(g => g[0].Prompt).ToArray(), groups.Select(g => g.Length).ToArray(), cancellationToken);
        }
        catch (OperationCanceledException)
        {
            foreach (var sequence in groups[0]) sequence.Cancel();
            return;
        }
        catch (Exception e) when (!_disposed && e is ModelRunException or ArgumentException)
        {
            // These prompts failed (a bad id, a run error); the batch goes on without them.
            foreach (var group in groups)
            {
                foreach (var sequence in group) sequence.Complete(e);
            }

            return;
        }

        var row = _active.Count;
        foreach (var group in groups)
        {
            foreach (var sequence in group)
            {
                _active.Add(sequence);
                Emit(sequence, row++);
            }
        }
    }

    /// <summary>Queues a group whose prompt is longer than a chunk for prefilling in a session of its own, a chunk per turn.</summary>
    private void StartChunkedPrefill(BatchSequence[] group)
    {
        GenerationSession session;
        try
        {
            session = _model.CreateSession(group.Max(s => s.Stepper.MaxLength));
        }
        catch (Exception e) when (!_disposed && e is ModelRunException or ArgumentException)
        {
            foreach (var sequence in group) sequence.Complete(e);
            return;
        }

        _prefilling.Enqueue(new ChunkedPrefill(group, session, _prefillChunkSize));
    }

    /// <summary>
    /// Runs one chunk of the first long prompt being prefilled; when its prefill ends, its rows join the batch (or, alone,
    /// it decodes in its session) and emit their first tokens.
    /// </summary>
    private void PrefillChunk()
    {
        if (!_prefilling.TryPeek(out var prefill)) return;
        var group = prefill.Group;
        Volatile.Write(ref _chunkInFlight, prefill);
        try
        {
            if (group[0].CancellationToken.IsCancellationRequested) throw new OperationCanceledException(group[0].CancellationToken);
            prefill.RunChunk();
        }
        catch (OperationCanceledException) when (!_disposed)
        {
            EndPrefill(error: null, cancelled: true);
            return;
        }
        catch (Exception e) when (!_disposed && e is ModelRunException or ArgumentException)
        {
            EndPrefill(e, cancelled: false);
            return;
        }
        finally
        {
            Volatile.Write(ref _chunkInFlight, null);
        }

        ChunkPrefilled?.Invoke(Steps);
        if (!prefill.Done) return;
        _prefilling.Dequeue();
        if (_active.Count == 0 && group.Length == 1)
        {
            _solo = prefill.Session; // alone: the zero-waste session step, as a lone request that arrived at an empty batch
            _active.Add(group[0]);
            Emit(group[0], prefill.Session.NextTokenLogits);
            return;
        }

        try
        {
            if (_solo is not null) MoveSoloToBatch();
            _cache.AddFromSession(prefill.Session, group.Length);
        }
        finally
        {
            prefill.Dispose();
        }

        var row = _active.Count;
        foreach (var sequence in group)
        {
            _active.Add(sequence);
            Emit(sequence, row++);
        }
    }

    /// <summary>Ends the first prefill in the queue, cancelled or with an error, and frees its session.</summary>
    private void EndPrefill(Exception? error, bool cancelled)
    {
        var prefill = _prefilling.Dequeue();
        prefill.Dispose();
        foreach (var sequence in prefill.Group)
        {
            if (cancelled) sequence.Cancel();
            else sequence.Complete(error);
        }
    }

    /// <summary>A request arriving at an empty batch: prefilled and decoded in a session of its own until another joins.</summary>
    private void StartSolo(BatchSequence sequence)
    {
        if (sequence.CancellationToken.IsCancellationRequested)
        {
            sequence.Cancel();
            return;
        }

        var session = _model.CreateSession(sequence.Stepper.MaxLength);
        _solo = session; // before the prefill, so that Dispose can stop it
        try
        {
            session.Append(sequence.Prompt, sequence.CancellationToken);
        }
        catch (OperationCanceledException) when (!_disposed)
        {
            EndSolo();
            sequence.Cancel();
            return;
        }
        catch (Exception e) when (!_disposed && e is ModelRunException or ArgumentException)
        {
            EndSolo();
            sequence.Complete(e);
            return;
        }
        catch
        {
            EndSolo();
            throw;
        }

        _active.Add(sequence);
        Emit(sequence, session.NextTokenLogits);
    }

    private void StepSolo()
    {
        var sequence = _active[0];
        _solo!.Append(sequence.NextId);
        Steps++;
        Emit(sequence, _solo.NextTokenLogits);
    }

    /// <summary>Another request joins a lone one: the lone sequence's cache becomes row 0 of the batch.</summary>
    private void MoveSoloToBatch()
    {
        if (_solo is null) return;
        try
        {
            _cache.AddFromSession(_solo);
        }
        finally
        {
            EndSolo();
        }
    }

    private void EndSolo()
    {
        _solo?.Dispose();
        _solo = null;
    }

    /// <summary>Runs one model step for every active row and emits each row's next token.</summary>
    private void Step()
    {
        if (_nextIds.Length != _active.Count) _nextIds = new int[_active.Count];
        for (var b = 0; b < _active.Count; b++) _nextIds[b] = _active[b].NextId;
        _cache.Step(_nextIds, CancellationToken.None); // a failure ends every row in the batch (Loop)
        Steps++;

        for (var b = 0; b < _active.Count; b++)
        {
            Emit(_active[b], b);
        }
    }

    private void Emit(BatchSequence sequence, int row) => Emit(sequence, _cache.Logits(row));

    private void Emit(BatchSequence sequence, ReadOnlySpan<float> logits)
    {
        if (sequence.CancellationToken.IsCancellationRequested)
        {
            sequence.Cancel();
            return;
        }

        GeneratedToken token;
        try
        {
            token = sequence.Stepper.Next(logits);
        }
        catch (Exception e)
        {
            sequence.Complete(e); // a user processor or picker threw: only its own sequence ends
            return;
        }

        if (sequence.Collected is { } collected) collected.Add(token);
        else sequence.Tokens.Writer.TryWrite(token);
        if (token.FinishReason is not null)
        {
            sequence.Complete();
        }
        else
        {
            sequence.NextId = token.Id;
        }
    }

    /// <summary>Removes the rows of finished and cancelled sequences from the batch.</summary>
    private void Leave()
    {
        _leaving.Clear();
        var any = false;
        foreach (var sequence in _active)
        {
            if (!sequence.Done && sequence.CancellationToken.IsCancellationRequested) sequence.Cancel();
            _leaving.Add(sequence.Done);
            any |= sequence.Done;
        }

        if (!any)
        {
            return;
        }

        if (_solo is not null)
        {
            EndSolo();
        }
        else
        {
            _cache.Remove(_leaving);
        }

        _active.RemoveAll(s => s.Done);
    }

    private void FailAll(Exception error)
    {
        foreach (var sequence in _active) sequence.Complete(error);
        _active.Clear();
        while (_prefilling.TryDequeue(out var prefill))
        {
            prefill.Dispose();
            foreach (var sequence in prefill.Group) sequence.Complete(error);
        }

        lock (_gate)
        {
            while (_waiting.TryDequeue(out var group))
            {
                foreach (var sequence in group) sequence.Complete(error);
            }
        }
    }

    /// <summary>Stops the loop (a run in flight is terminated), fails unfinished requests with <see cref="ObjectDisposedException"/> and frees the cache.</summary>
    public void Dispose()
    {
        Thread? thread;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            thread = _thread;
            Monitor.PulseAll(_gate);
        }

        while (thread is not null && !thread.Join(10))
        {
            _cache.RunOptions.Terminate = true;
            Volatile.Read(ref _solo)?.Dispose(); // stops the lone session's run in flight (its Dispose is thread-safe)
            Volatile.Read(ref _chunkInFlight)?.Dispose(); // and a prefill chunk's
        }

        FailAll(new ObjectDisposedException(nameof(LanguageModel), "The model was disposed while generating."));
        EndSolo();
        _cache.Dispose();
    }
}
