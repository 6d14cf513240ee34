namespace OnnxLM;

/// <summary>Log-likelihood of a continuation, the way lm-evaluation-harness computes it.</summary>
internal static class Scorer
{
    public static (int[] Context, int[] Continuation) Tokenize(LanguageModel model, string context, string continuation, ScoreOptions options)
    {
        // lm-eval moves the context's trailing whitespace onto the continuation, so " unto" is one token, not "" + " unto".
        var trimmed = context.TrimEnd();
        continuation = context[trimmed.Length..] + continuation;
        context = trimmed;

        var tokenizer = model.Tokenizer;
        if (context.Length == 0)
        {
            var prefix = options.PrefixTokenId ?? model.Info.BosTokenId ?? tokenizer.BosTokenId
                ?? (model.Info.EosTokenIds.Count > 0 ? model.Info.EosTokenIds[0] : throw new InvalidOperationException(
                    "The context is empty and the model has neither BOS nor EOS to start from; set ScoreOptions.PrefixTokenId."));
            return ([prefix], tokenizer.Encode(continuation, addBos: false));
        }

        var whole = tokenizer.Encode(context + continuation, options.AddBosToken);
        var contextLength = tokenizer.Encode(context, options.AddBosToken).Length;
        if (contextLength >= whole.Length)
        {
            throw new ArgumentException($"The continuation '{continuation}' adds no tokens after the context.", nameof(continuation));
        }

        return (whole[..contextLength], whole[contextLength..]);
    }

    public static ScoreResult Score(LanguageModel model, int[] context, int[] continuation, CancellationToken cancellationToken)
    {
        var vocab = model.Info.VocabularySize;
        var input = new int[context.Length + continuation.Length - 1];
        context.CopyTo(input, 0);
        continuation.AsSpan(0, continuation.Length - 1).CopyTo(input.AsSpan(context.Length));
        if (input.Length > model.Info.ContextLength)
        {
            throw new ContextLengthExceededException(input.Length, model.Info.ContextLength,
                $"Context ({context.Length} tokens) plus continuation ({continuation.Length}) needs {input.Length} positions, more than the model's context length {model.Info.ContextLength}.");
        }

        var logits = new float[input.Length * vocab];
        using (var session = model.CreateSession(input.Length))
        {
            session.AppendWithAllLogits(input, logits, cancellationToken);
        }

        var tokens = new TokenScore[continuation.Length];
        for (var i = 0; i < continuation.Length; i++)
        {
            // Position context.Length - 1 + i predicts continuation token i.
            var row = logits.AsSpan((context.Length - 1 + i) * vocab, vocab);
            var id = continuation[i];
            tokens[i] = new TokenScore(id, PieceText(model, id), row[id] - SamplingMath.LogSumExp(row), SamplingMath.Rank(row, id));
        }

        return new ScoreResult(context, tokens);
    }

    /// <summary>
    /// Scores every token of <paramref name="tokens"/> once, conditioned on <paramref name="prefix"/> and up to
    /// window − stride earlier tokens, one window per forward pass (memory bounded by the window).
    /// </summary>
    public static (double LogProb, int Windows) Rolling(
        LanguageModel model, int prefix, int[] tokens, int window, int stride, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        var vocab = model.Info.VocabularySize;
        var sequence = new int[tokens.Length + 1];
        sequence[0] = prefix;
        tokens.CopyTo(sequence, 1);
        var logits = new float[window * vocab];
        double total = 0;
        var windows = 0;
        using var session = model.CreateSession(window);
        for (var next = 1; next < sequence.Length; windows++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Targets sequence[next .. end); the input is the (up to) `window` tokens before `end`.
            var end = Math.Min(next + stride, sequence.Length);
            var start = Math.Max(0, end - 1 - window);
            var input = sequence.AsSpan(start, end - 1 - start);
            session.Clear();
            session.AppendWithAllLogits(input, logits.AsSpan(0, input.Length * vocab), cancellationToken);
            for (var target = next; target < end; target++)
            {
                var row = logits.AsSpan((target - 1 - start) * vocab, vocab);
                total += row[sequence[target]] - SamplingMath.LogSumExp(row);
            }

            next = end;
            progress?.Report((double)(next - 1) / tokens.Length);
        }

        return (total, windows);
    }

    private static string PieceText(LanguageModel model, int id)
    {
        try
        {
            return model.Tokenizer.Decode([id]);
        }
        catch (Exception e) when (e is ModelFormatException or ArgumentOutOfRangeException)
        {
            return string.Empty; // no tokenizer, or an id the tokenizer does not cover (model vocab larger than tokenizer's)
        }
    }
}
