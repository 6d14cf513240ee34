using Microsoft.ML.OnnxRuntime;

namespace OnnxLM;

/// <summary>
/// The graph runs of one <see cref="GenerationSession"/>: its <see cref="GraphFeed"/>, logits, key/value cache
/// (<see cref="IKvCache"/>) and the I/O binding they are bound to for each run. The session keeps the tokens and checks
/// the caller's input; this runs tokens after a cache of a given length and commits the cache when the run succeeds.
/// On the CPU a step's inputs, cache and logits are all views of buffers the session (or the graph) owns, so once they
/// have grown a step allocates neither managed nor native memory.
/// </summary>
internal sealed class SessionRunner : IDisposable
{
    private readonly DecoderGraph _graph;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly GraphFeed _feed;
    private readonly SessionLogits _logits;
    private readonly int _vocab;

    public SessionRunner(DecoderGraph graph, ModelInfo info, int maxLength)
    {
        _graph = graph;
        _vocab = info.VocabularySize;
        _binding = graph.Session.CreateIoBinding();
        _feed = new GraphFeed(graph);
        _logits = new SessionLogits(graph, info.VocabularySize, info.GraphPath);
        Cache = graph.UseHostCache ? new HostKvCache(graph, maxLength) : new DeviceKvCache(graph);
    }

    /// <summary>The session's key/value cache.</summary>
    public IKvCache Cache { get; }

    /// <summary>
    /// Runs <paramref name="tokenIds"/> after <paramref name="past"/> cached positions and commits the cache. The last
    /// position's logits go to <paramref name="nextLogits"/>; with <paramref name="allLogits"/> given, the rows from
    /// <paramref name="firstRow"/> on go there too. Graphs that take one new token at a time after a past
    /// (<see cref="DecoderGraph.SingleTokenWithPast"/>) run the tokens one by one, with the same results. A failed run leaves
    /// the cache's first <paramref name="past"/> positions as they were.
    /// </summary>
    public void Run(ReadOnlySpan<int> tokenIds, int past, Span<float> allLogits, int firstRow, float[] nextLogits, CancellationToken cancellationToken)
    {
        if (past == 0 || tokenIds.Length == 1 || !_graph.SingleTokenWithPast)
        {
            RunBound(tokenIds, past, allLogits, firstRow, nextLogits, cancellationToken);
            return;
        }

        for (var i = 0; i < tokenIds.Length; i++)
        {
            RunBound(tokenIds.Slice(i, 1), past + i, default, 0, nextLogits, cancellationToken);
            if (!allLogits.IsEmpty && i >= firstRow) nextLogits.CopyTo(allLogits.Slice((i - firstRow) * _vocab, _vocab));
        }
    }

    private void RunBound(ReadOnlySpan<int> tokenIds, int past, Span<float> allLogits, int firstRow, float[] nextLogits, CancellationToken cancellationToken)
    {
        var n = tokenIds.Length;
        _feed.Begin(1, n, past);
        _feed.Row(0, tokenIds, past);
        OrtValue[]? outputs = null;
        try
        {
            _binding.ClearBoundInputs();
            _binding.ClearBoundOutputs();
            _feed.Bind(_binding);
            _logits.Bind(_binding, n, allLogits.IsEmpty ? n - 1 : firstRow, Cache.OnDevice);
            Cache.Bind(_binding, past, past + n);
            GraphRun.RunBound(_graph.Session, _runOptions, _binding, cancellationToken);
            if (_logits.InOutputs || Cache.OnDevice) outputs = _binding.GetOutputValues().ToArray();
        }
        finally
        {
            // Nothing stays bound between runs: a parked session holds its cache, not references into ONNX Runtime.
            _binding.ClearBoundInputs();
            _binding.ClearBoundOutputs();
        }

        try
        {
            _logits.Read(outputs?[0], allLogits, nextLogits);
        }
        catch
        {
            foreach (var value in outputs.AsSpan(outputs is null ? 0 : 1)) value.Dispose(); // the cache stays as it was
            throw;
        }
        finally
        {
            outputs?[0].Dispose();
        }

        Cache.Commit(outputs.AsSpan(outputs is null ? 0 : 1));
    }

    /// <summary>Stops a run in flight (from another thread); the run throws and the session is being disposed.</summary>
    public void Terminate() => _runOptions.Terminate = true;

    public void Dispose()
    {
        Cache.Dispose();
        _feed.Dispose();
        _logits.Dispose();
        _binding.Dispose();
        _runOptions.Dispose();
    }
}
