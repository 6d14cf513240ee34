using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace OnnxLM;

/// <summary>The decoding loop behind <see cref="LanguageModel.GenerateStreamingAsync(IReadOnlyList{int}, GenerationOptions?, CancellationToken)"/>.</summary>
internal static class Generator
{
    public static async IAsyncEnumerable<GeneratedToken> RunAsync(
        LanguageModel model, int[] prompt, GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var maxLength = (int)Math.Min((long)prompt.Length + options.MaxNewTokens, model.Info.ContextLength);
        using var session = model.CreateSession(maxLength);
        await Task.Run(() => session.Append(prompt, cancellationToken), cancellationToken).ConfigureAwait(false);
        await foreach (var token in ContinueAsync(model, session, prompt, options, cancellationToken).ConfigureAwait(false))
        {
            yield return token;
        }
    }

    /// <summary>Generates from a session that already holds the prompt (used directly by n-sample generation after a fork).</summary>
    public static async IAsyncEnumerable<GeneratedToken> ContinueAsync(
        LanguageModel model, GenerationSession session, int[] prompt, GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var stopIds = options.StopTokenIds ?? model.Info.EosTokenIds;
        var tokenizer = TryGetTokenizer(model);
        var pipeline = SamplingPipeline.Create(options, stopIds, tokenizer);
        var decoder = tokenizer?.CreateStreamingDecoder(skipSpecialTokens: true);
        decoder?.Prime(prompt.Where(id => id < tokenizer!.VocabularySize).ToArray());
        var stops = new StopSequenceMatcher(options.StopSequences);
        var random = options.Seed is { } seed ? new Random(seed) : new Random();
        var context = new SamplingContext(random, prompt.Length);
        var history = new int[session.MaxLength];
        session.Tokens.CopyTo(history);
        var logits = new float[model.Info.VocabularySize];
        var scratch = new float[logits.Length];

        for (var length = session.Length; ;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var raw = session.NextTokenLogits;
            raw.CopyTo(logits);
            context.SetTokens(history, length);
            var id = pipeline.Choose(logits, context);
            var logProb = SamplingMath.FastLogProb(session.NextTokenLogits, id, scratch);
            history[length++] = id;

            FinishReason? finish = null;
            string text;
            if (Contains(stopIds, id))
            {
                finish = FinishReason.Stop;
                text = decoder?.Flush() ?? string.Empty;
            }
            else
            {
                text = decoder?.Append(id) ?? string.Empty;
                if (length - prompt.Length >= options.MaxNewTokens || length >= session.MaxLength)
                {
                    finish = FinishReason.Length;
                }
                else if (options.MaxTime is { } limit && clock.Elapsed >= limit)
                {
                    finish = FinishReason.TimeLimit;
                }

                if (finish is not null)
                {
                    text += decoder?.Flush() ?? string.Empty;
                }
            }

            if (stops.IsActive)
            {
                var (emit, stop) = stops.Push(text);
                if (stop is not null)
                {
                    yield return new GeneratedToken(id, emit, logProb, FinishReason.Stop);
                    yield break;
                }

                text = finish is null ? emit : emit + stops.Flush();
            }

            yield return new GeneratedToken(id, text, logProb, finish);
            if (finish is not null)
            {
                yield break;
            }

            await Task.Run(() => session.Append(id), cancellationToken).ConfigureAwait(false);
        }
    }

    private static TextTokenizer? TryGetTokenizer(LanguageModel model)
    {
        try
        {
            return model.Tokenizer;
        }
        catch (ModelFormatException)
        {
            return null; // a folder without tokenizer files generates ids only
        }
    }

    private static bool Contains(IReadOnlyList<int> ids, int id)
    {
        for (var i = 0; i < ids.Count; i++)
        {
            if (ids[i] == id)
            {
                return true;
            }
        }

        return false;
    }
}
