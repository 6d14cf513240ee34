using System.Runtime.CompilerServices;

namespace OnnxLM;

/// <summary>The decoding loop behind <see cref="LanguageModel.GenerateStreamingAsync(IReadOnlyList{int}, GenerationOptions?, CancellationToken)"/>.</summary>
internal static class Generator
{
    public static async IAsyncEnumerable<GeneratedToken> RunAsync(
        LanguageModel model, int[] prompt, GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var maxLength = (int)Math.Min((long)prompt.Length + options.MaxNewTokens, model.Info.ContextLength);
        var stopIds = options.StopTokenIds ?? model.Info.EosTokenIds;
        var pipeline = SamplingPipeline.Create(options);
        var decoder = TryCreateDecoder(model, prompt);
        var random = options.Seed is { } seed ? new Random(seed) : new Random();
        var context = new SamplingContext(random, prompt.Length);
        var history = new int[maxLength];
        prompt.CopyTo(history, 0);
        var logits = new float[model.Info.VocabularySize];

        using var session = model.CreateSession(maxLength);
        await Task.Run(() => session.Append(prompt, cancellationToken), cancellationToken).ConfigureAwait(false);

        for (var length = prompt.Length; ; )
        {
            cancellationToken.ThrowIfCancellationRequested();
            var raw = session.NextTokenLogits;
            raw.CopyTo(logits);
            context.SetTokens(history, length);
            var id = pipeline.Choose(logits, context);
            var logProb = raw[id] - SamplingMath.LogSumExp(raw);
            history[length++] = id;

            FinishReason? finish = null;
            var text = string.Empty;
            if (Contains(stopIds, id))
            {
                finish = FinishReason.Stop;
                text = decoder?.Flush() ?? string.Empty;
            }
            else
            {
                text = decoder?.Append(id) ?? string.Empty;
                if (length - prompt.Length >= options.MaxNewTokens || length >= maxLength)
                {
                    finish = FinishReason.Length;
                    text += decoder?.Flush() ?? string.Empty;
                }
            }

            yield return new GeneratedToken(id, text, logProb, finish);
            if (finish is not null)
            {
                yield break;
            }

            await Task.Run(() => session.Append(id), cancellationToken).ConfigureAwait(false);
        }
    }

    private static StreamingDecoder? TryCreateDecoder(LanguageModel model, int[] prompt)
    {
        try
        {
            var decoder = model.Tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
            decoder.Prime(prompt.Where(id => id < model.Tokenizer.VocabularySize).ToArray());
            return decoder;
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
