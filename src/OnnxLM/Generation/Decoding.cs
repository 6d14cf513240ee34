namespace OnnxLM;

/// <summary>
/// The one entrance to decoding for a loaded model. Every generation — <see cref="LanguageModel"/>'s generate, sample and
/// chat methods, <see cref="Chat.ChatSession"/>, <see cref="GenerationSession.GenerateStreamingAsync"/> and through them
/// hosting and the server — comes in here with a prompt (or a session that holds it), options, the stop ids to use when
/// the options name none, and a cancellation token. Here, and only here, it is decided whether a generation joins the
/// model's continuous-batching scheduler or decodes in a session of its own; a session that may already hold part of the
/// prompt keeps that prefix and runs only the rest.
/// </summary>
internal sealed class Decoding
{
    private readonly ModelRuntime _model;

    public Decoding(ModelRuntime model) => _model = model;

    /// <summary>
    /// The one scheduler-or-session choice: the scheduler when there is one, except for speculative decoding, which needs
    /// a session of its own. Null: decode alone.
    /// </summary>
    private BatchScheduler? SchedulerFor(GenerationOptions options) => options.Speculation is null ? _model.Scheduler : null;

    /// <summary>Generates after <paramref name="prompt"/> and returns the whole result.</summary>
    /// <param name="prompt">The checked prompt (not empty, leaving room in the context).</param>
    /// <param name="options">Sampling and stopping options.</param>
    /// <param name="defaultStops">The stop ids when <see cref="GenerationOptions.StopTokenIds"/> is null; null for the model's EOS.</param>
    /// <param name="cancellationToken">Stops generation.</param>
    public Task<GenerationResult> GenerateAsync(int[] prompt, GenerationOptions options, IReadOnlyList<int>? defaultStops, CancellationToken cancellationToken) =>
        SchedulerFor(options) is { } scheduler
            ? scheduler.GenerateAsync(prompt, options, defaultStops, cancellationToken)
            : Task.Run(() => Generator.Generate(_model, prompt, options, cancellationToken, defaultStops), cancellationToken);

    /// <summary>Generates after <paramref name="prompt"/>, yielding each token as soon as it is chosen.</summary>
    public IAsyncEnumerable<GeneratedToken> StreamAsync(int[] prompt, GenerationOptions options, IReadOnlyList<int>? defaultStops, CancellationToken cancellationToken) =>
        SchedulerFor(options) is { } scheduler
            ? scheduler.StreamAsync(prompt, options, defaultStops, cancellationToken)
            : Generator.RunAsync(_model, prompt, options, cancellationToken, defaultStops);

    /// <summary>
    /// <paramref name="count"/> samples after one prompt, prefilled once: rows of one batch with the scheduler, else forks of
    /// one prefilled session decoded in turn. With a seed, sample i uses seed + i.
    /// </summary>
    public async Task<IReadOnlyList<GenerationResult>> GenerateManyAsync(int[] prompt, int count, GenerationOptions options, CancellationToken cancellationToken)
    {
        if (SchedulerFor(options) is { } scheduler)
        {
            return await scheduler.GenerateManyAsync(prompt, count, options, cancellationToken).ConfigureAwait(false);
        }

        var maxLength = (int)Math.Min((long)prompt.Length + options.MaxNewTokens, _model.Info.ContextLength);
        using var prefilled = _model.CreateSession(maxLength);
        await Task.Run(() => prefilled.Append(prompt, cancellationToken), cancellationToken).ConfigureAwait(false);
        var results = new List<GenerationResult>(count);
        for (var i = 0; i < count; i++)
        {
            using var session = prefilled.Fork();
            var sampleOptions = options.Seed is { } seed ? options.WithSeed(unchecked(seed + i)) : options;
            var tokens = await Task.Run(() => Generator.Decode(_model, session, prompt, sampleOptions, cancellationToken).ToList(), cancellationToken).ConfigureAwait(false);
            results.Add(Generator.ToResult(tokens, prompt.Length));
        }

        return results;
    }

    /// <summary>
    /// Generates in <paramref name="session"/>, which keeps its cache for a later call (a conversation's next turn). With a
    /// <paramref name="prompt"/>, the session is first made to hold it, reusing the longest prefix it already holds
    /// (<see cref="GenerationSession.Prefill"/>, run here, before the first token is asked for, so that its failures come
    /// from this call); without one, decoding continues after what the session holds. A session decodes alone: the
    /// scheduler's rows have caches of their own.
    /// </summary>
    /// <param name="session">The session to decode in; one call at a time.</param>
    /// <param name="prompt">The whole prompt, or null to continue after the session's tokens.</param>
    /// <param name="options">Sampling and stopping options.</param>
    /// <param name="defaultStops">The stop ids when <see cref="GenerationOptions.StopTokenIds"/> is null; null for the model's EOS.</param>
    /// <param name="reused">How many prompt tokens the session already held (0 without a prompt).</param>
    /// <param name="cancellationToken">Stops the prefill and the decoding.</param>
    public static IAsyncEnumerable<GeneratedToken> StreamInSession(GenerationSession session, int[]? prompt, GenerationOptions options,
        IReadOnlyList<int>? defaultStops, out int reused, CancellationToken cancellationToken)
    {
        reused = prompt is null ? 0 : session.Prefill(prompt, cancellationToken);
        var model = session.Runtime;
        var tokens = prompt ?? session.Tokens.ToArray();
        return Generator.StreamAsync(stop => Generator.Decode(model, session, tokens, options, stop, defaultStops), cancellationToken);
    }
}
