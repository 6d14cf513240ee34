using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace OnnxLM;

/// <summary>The decoding loop behind <see cref="LanguageModel.GenerateStreamingAsync(IReadOnlyList{int}, GenerationOptions?, CancellationToken)"/>.</summary>
internal static class Generator
{
    /// <summary>Prefills a fresh session with the prompt and decodes after it, streaming.</summary>
    public static IAsyncEnumerable<GeneratedToken> RunAsync(
        ModelRuntime model, int[] prompt, GenerationOptions options, CancellationToken cancellationToken, IReadOnlyList<int>? defaultStops = null) =>
        StreamAsync(stop => PrefillAndDecode(model, prompt, options, defaultStops, stop), cancellationToken);

    /// <summary>
    /// Runs a decoding loop (<paramref name="produce"/>) on one thread-pool thread and hands tokens over through a small
    /// bounded channel: no task or thread hop per token, and the caller's thread never runs the model. Leaving the
    /// enumeration early cancels the loop and waits for it, so the session is free again before this returns.
    /// </summary>
    public static async IAsyncEnumerable<GeneratedToken> StreamAsync(
        Func<CancellationToken, IEnumerable<GeneratedToken>> produce, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var channel = Channel.CreateBounded<GeneratedToken>(new BoundedChannelOptions(8) { SingleReader = true, SingleWriter = true });
        var producer = Task.Run(() =>
        {
            try
            {
                foreach (var token in produce(stop.Token))
                {
                    while (!channel.Writer.TryWrite(token))
                    {
                        if (!channel.Writer.WaitToWriteAsync(stop.Token).AsTask().GetAwaiter().GetResult()) return;
                    }
                }

                channel.Writer.TryComplete();
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
            }
        }, CancellationToken.None);

        try
        {
            await foreach (var token in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                cancellationToken.ThrowIfCancellationRequested(); // tokens already buffered are not handed out after cancellation
                yield return token;
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await producer.ConfigureAwait(false); // never throws: failures travel through the channel
        }
    }

    private static IEnumerable<GeneratedToken> PrefillAndDecode(
        ModelRuntime model, int[] prompt, GenerationOptions options, IReadOnlyList<int>? defaultStops, CancellationToken cancellationToken)
    {
        using var session = Prefill(model, prompt, options, cancellationToken);
        foreach (var token in Decode(model, session, prompt, options, cancellationToken, defaultStops))
        {
            yield return token;
        }
    }

    /// <summary>Generates on the calling thread and returns the whole result (no hand-over per token).</summary>
    public static GenerationResult Generate(
        ModelRuntime model, int[] prompt, GenerationOptions options, CancellationToken cancellationToken, IReadOnlyList<int>? defaultStops = null)
    {
        using var session = Prefill(model, prompt, options, cancellationToken);
        return ToResult(Decode(model, session, prompt, options, cancellationToken, defaultStops).ToList(), prompt.Length);
    }

    /// <summary>A result from the tokens of one generation.</summary>
    public static GenerationResult ToResult(List<GeneratedToken> tokens, int promptLength) =>
        new(string.Concat(tokens.Select(t => t.Text)), tokens, promptLength, tokens[^1].FinishReason ?? FinishReason.Length);

    /// <summary>A session sized for the prompt plus the new tokens (capped by the context), holding the prompt.</summary>
    private static GenerationSession Prefill(ModelRuntime model, int[] prompt, GenerationOptions options, CancellationToken cancellationToken)
    {
        var session = model.CreateSession((int)Math.Min((long)prompt.Length + options.MaxNewTokens, model.Info.ContextLength));
        try
        {
            session.Append(prompt, cancellationToken);
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The decoding loop over a session that already holds the prompt; runs the model synchronously on the calling
    /// thread. It stops at <see cref="GenerationOptions.StopTokenIds"/>, else <paramref name="defaultStops"/>, else the model's EOS.
    /// With <see cref="GenerationOptions.Speculation"/> the logits come row by row from checked drafts (<see cref="Speculation"/>);
    /// the pipeline is called exactly as without it, and the session is left as without it.
    /// </summary>
    public static IEnumerable<GeneratedToken> Decode(ModelRuntime model, GenerationSession session, int[] prompt, GenerationOptions options,
        CancellationToken cancellationToken, IReadOnlyList<int>? defaultStops = null)
    {
        var step = new TokenStepper(model, session.Tokens, prompt, session.MaxLength, options, defaultStops);
        using var speculation = Speculation.Create(model, session, options);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var token = step.Next(speculation is null ? session.NextTokenLogits : speculation.NextTokenLogits);
            yield return token;
            if (token.FinishReason is not null)
            {
                yield break;
            }

            if (speculation is null)
            {
                session.Append([token.Id], cancellationToken);
            }
            else
            {
                // A batch emits at most its draft plus one token: no draft beyond the tokens still allowed.
                speculation.Advance(step.Tokens, options.MaxNewTokens - step.GeneratedCount - 1, cancellationToken);
            }
        }
    }
}
