using System.Buffers;
using Microsoft.Extensions.Logging;
using OnnxLM.Sampling;

namespace OnnxLM;

/// <summary>Log-likelihood of a continuation, the way lm-evaluation-harness computes it.</summary>
internal static class Scorer
{
    public static (int[] Context, int[] Continuation) Tokenize(ModelRuntime model, string context, string continuation, ScoreOptions options, CancellationToken cancellationToken = default)
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
            var alone = tokenizer.Encode(continuation, addSpecialTokens: false, cancellationToken);
            return alone.Length > 0 ? ([prefix], alone) : throw new ArgumentException(
                continuation.Length == 0 ? "The context and the continuation are both empty: there is nothing to score." : $"The continuation '{continuation}' has no tokens to score.",
                nameof(continuation));
        }

        var whole = tokenizer.EncodeForModel(context + continuation, options.AddBosToken, cancellationToken);
        var contextLength = tokenizer.EncodeForModel(context, options.AddBosToken, cancellationToken).Length;
        if (contextLength >= whole.Length)
        {
            throw new ArgumentException($"The continuation '{continuation}' adds no tokens after the context.", nameof(continuation));
        }

        return (whole[..contextLength], whole[contextLength..]);
    }

    public static ScoreResult Score(ModelRuntime model, int[] context, int[] continuation, int alternatives, CancellationToken cancellationToken)
    {
        // One forward pass over context + continuation (minus its last token); rows from the context's last position on are kept.
        var input = Input(model, context, continuation);
        var logits = ArrayPool<float>.Shared.Rent(continuation.Length * model.Info.VocabularySize);
        try
        {
            using (var session = model.CreateSession(input.Length))
            {
                session.AppendWithAllLogits(input, logits.AsSpan(0, continuation.Length * model.Info.VocabularySize), context.Length - 1, cancellationToken);
            }

            return new ScoreResult(context, ScoreRows(model, logits, continuation, alternatives));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(logits);
        }
    }

    /// <summary>
    /// Scores pairs, prefilling each distinct context once: its continuations fork the context's cache
    /// (multiple-choice answers share their question), or with batching on are rows of one batched pass after it. Pairs whose context is their own run several at a time in
    /// right-padded batches when <paramref name="padded"/> says so and the graph takes a batch; by default only on
    /// CUDA, since on the CPU one pass per pair measured as fast (benchmarks/RESULTS.md). Results come back in request order.
    /// </summary>
    public static ScoreResult[] ScoreBatch(
        ModelRuntime model, (int[] Context, int[] Continuation)[] pairs, int alternatives, IProgress<double>? progress, CancellationToken cancellationToken,
        bool? padded = null)
    {
        foreach (var (context, continuation) in pairs)
        {
            GraphRun.CheckTokenIds(context, model.Info.VocabularySize, "context");
            GraphRun.CheckTokenIds(continuation, model.Info.VocabularySize, "continuation");
        }

        var results = new ScoreResult[pairs.Length];
        var done = 0;
        var groups = Enumerable.Range(0, pairs.Length).GroupBy(i => string.Join(",", pairs[i].Context)).ToList();
        var alone = groups.Where(g => g.Count() == 1).Select(g => g.First()).ToList();
        if (alone.Count > 1 && (padded ?? model.Graph.Provider == ExecutionProvider.Cuda) && PaddedBatch.IsSupported(model.Graph))
        {
            groups.RemoveAll(g => g.Count() == 1);
            foreach (var chunk in PackBySize(model, alone.OrderBy(i => pairs[i].Context.Length + pairs[i].Continuation.Length).ToList(), pairs))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var inputs = chunk.Select(i => Input(model, pairs[i].Context, pairs[i].Continuation)).ToArray();
                var logits = chunk.Select(i => new float[pairs[i].Continuation.Length * model.Info.VocabularySize]).ToArray();
                PaddedBatch.Run(model, inputs, chunk.Select(i => pairs[i].Context.Length - 1).ToArray(), logits, cancellationToken);
                for (var k = 0; k < chunk.Count; k++)
                {
                    var (context, continuation) = pairs[chunk[k]];
                    results[chunk[k]] = new ScoreResult(context, ScoreRows(model, logits[k], continuation, alternatives));
                    progress?.Report((double)++done / pairs.Length);
                }
            }
        }

        foreach (var group in groups)
        {
            if (group.Count() == 1)
            {
                var i = group.First(); // nothing to share: one pass, as ScoreAsync
                results[i] = Score(model, pairs[i].Context, pairs[i].Continuation, alternatives, cancellationToken);
                progress?.Report((double)++done / pairs.Length);
                continue;
            }

            var context = pairs[group.First()].Context;
            var longest = group.Max(i => pairs[i].Continuation.Length);
            CheckLength(model, context.Length + longest - 1, context.Length, longest);
            if (model.Scheduler is not null && !model.Graph.SingleTokenWithPast && TryScoreGroupBatched(model, context, group.ToList(), pairs, alternatives, results, cancellationToken))
            {
                foreach (var _ in group) progress?.Report((double)++done / pairs.Length);
                continue;
            }

            using var shared = model.CreateSession(context.Length + longest - 1);
            shared.Append(context, cancellationToken);
            foreach (var i in group)
            {
                using var session = shared.Fork();
                results[i] = ScoreAfter(model, session, context, pairs[i].Continuation, alternatives, cancellationToken);
                progress?.Report((double)++done / pairs.Length);
            }
        }

        return results;
    }

    /// <summary>
    /// Scores the continuations of one context as rows of a batched cache (batching on): the context is prefilled once,
    /// each row holds a copy of its cache, and all continuations run in one right-padded pass per chunk. Returns false,
    /// having marked the graph, when it turns out to take only one new token after a past (the forks then do it token by token).
    /// </summary>
    private static bool TryScoreGroupBatched(
        ModelRuntime model, int[] context, List<int> group, (int[] Context, int[] Continuation)[] pairs, int alternatives, ScoreResult[] results,
        CancellationToken cancellationToken)
    {
        var vocab = model.Info.VocabularySize;
        foreach (var chunkOf in group.Chunk(PaddedBatch.MaxSequences))
        {
            // Every row returns [continuation − 1, vocab] logits; keep a pass within PaddedBatch's logit limit.
            var longest = chunkOf.Max(i => pairs[i].Continuation.Length);
            var rows = (int)Math.Max(1, Math.Min(chunkOf.Length, PaddedBatch.MaxLogitElements / ((long)longest * vocab)));
            foreach (var part in chunkOf.Chunk(rows))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var logits = part.Select(i => new float[pairs[i].Continuation.Length * vocab]).ToArray();
                using (model.EnterRun())
                using (var cache = new BatchedCache(model))
                {
                    cache.Add(context, part.Length, cancellationToken);
                    for (var r = 0; r < part.Length; r++) cache.Logits(r).CopyTo(logits[r]);
                    try
                    {
                        cache.Score(
                            part.Select(i => pairs[i].Continuation[..^1]).ToArray(),
                            logits.Select(l => (Memory<float>)l.AsMemory(vocab)).ToArray(),
                            cancellationToken);
                    }
                    catch (ModelRunException e) when (longest > 2)
                    {
                        // Some exports build their attention mask for one new token when a past is given (as the session finds out).
                        model.Graph.SingleTokenWithPast = true;
                        model.Graph.Logger.LogWarning("{Graph} failed on several new tokens after a past ({Error}); continuations are scored one token at a time.", model.Info.GraphPath, e.Message);
                        return false;
                    }
                }

                for (var r = 0; r < part.Length; r++)
                {
                    results[part[r]] = new ScoreResult(context, ScoreRows(model, logits[r], pairs[part[r]].Continuation, alternatives));
                }
            }
        }

        return true;
    }

    /// <summary>Splits pairs (sorted by length, so little padding) into batches within the size limits of <see cref="PaddedBatch"/>.</summary>
    private static IEnumerable<List<int>> PackBySize(ModelRuntime model, List<int> sorted, (int[] Context, int[] Continuation)[] pairs)
    {
        var chunk = new List<int>();
        foreach (var i in sorted)
        {
            var width = pairs[i].Context.Length + pairs[i].Continuation.Length - 1; // the longest so far: the list is sorted
            if (chunk.Count > 0 && (chunk.Count == PaddedBatch.MaxSequences || (long)(chunk.Count + 1) * width * model.Info.VocabularySize > PaddedBatch.MaxLogitElements))
            {
                yield return chunk;
                chunk = [];
            }

            chunk.Add(i);
        }

        if (chunk.Count > 0) yield return chunk;
    }

    /// <summary>The positions one pass over a pair reads: the context and the continuation without its last token.</summary>
    private static int[] Input(ModelRuntime model, int[] context, int[] continuation)
    {
        var input = new int[context.Length + continuation.Length - 1];
        context.CopyTo(input, 0);
        continuation.AsSpan(0, continuation.Length - 1).CopyTo(input.AsSpan(context.Length));
        CheckLength(model, input.Length, context.Length, continuation.Length);
        return input;
    }

    /// <summary>Scores a continuation from a session that holds exactly the context (one pass over the continuation).</summary>
    private static ScoreResult ScoreAfter(ModelRuntime model, GenerationSession session, int[] context, int[] continuation, int alternatives, CancellationToken cancellationToken)
    {
        var vocab = model.Info.VocabularySize;
        var logits = ArrayPool<float>.Shared.Rent(continuation.Length * vocab);
        try
        {
            session.NextTokenLogits.CopyTo(logits);
            if (continuation.Length > 1)
            {
                session.AppendWithAllLogits(continuation.AsSpan(0, continuation.Length - 1), logits.AsSpan(vocab, (continuation.Length - 1) * vocab), 0, cancellationToken);
            }

            return new ScoreResult(context, ScoreRows(model, logits, continuation, alternatives));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(logits);
        }
    }

    /// <summary>Row i of <paramref name="logits"/> predicts continuation token i.</summary>
    private static TokenScore[] ScoreRows(ModelRuntime model, float[] logits, int[] continuation, int alternatives)
    {
        var vocab = model.Info.VocabularySize;
        var tokens = new TokenScore[continuation.Length];
        // Rows are independent; spread the double-precision log-softmax over the cores when there is enough work.
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = (long)continuation.Length * vocab >= 1 << 17 ? Environment.ProcessorCount : 1 };
        Parallel.For(0, continuation.Length, parallel, i =>
            tokens[i] = ScoreToken(model, logits.AsSpan(i * vocab, vocab), continuation[i], alternatives));
        return tokens;
    }

    /// <summary>Log-prob, rank and the top alternatives of <paramref name="id"/> in one row of raw logits.</summary>
    public static TokenScore ScoreToken(ModelRuntime model, ReadOnlySpan<float> row, int id, int alternatives)
    {
        var lse = SamplingMath.LogSumExp(row);
        var score = new TokenScore(id, PieceText(model, id), row[id] - lse, SamplingMath.Rank(row, id));
        if (alternatives == 0)
        {
            return score;
        }

        var best = new List<TokenAlternative>(alternatives);
        var taken = new HashSet<int>();
        for (var k = 0; k < Math.Min(alternatives, row.Length); k++)
        {
            var top = -1;
            for (var i = 0; i < row.Length; i++)
            {
                if (!taken.Contains(i) && (top < 0 || row[i] > row[top])) top = i;
            }

            taken.Add(top);
            best.Add(new TokenAlternative(top, PieceText(model, top), row[top] - lse));
        }

        return score with { Alternatives = best };
    }

    private static void CheckLength(ModelRuntime model, int positions, int context, int continuation)
    {
        if (positions > model.Info.ContextLength)
        {
            throw new ContextLengthExceededException(positions, model.Info.ContextLength,
                $"Context ({context} tokens) plus continuation ({continuation}) needs {positions} positions, more than the model's context length {model.Info.ContextLength}.");
        }
    }

    /// <summary>
    /// Scores every token of <paramref name="tokens"/> once, conditioned on <paramref name="prefix"/> and up to
    /// window − stride earlier tokens, one window per forward pass (memory bounded by the window).
    /// </summary>
    public static (double LogProb, int Windows) Rolling(
        ModelRuntime model, int prefix, int[] tokens, int window, int stride, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        var vocab = model.Info.VocabularySize;
        var sequence = new int[tokens.Length + 1];
        sequence[0] = prefix;
        tokens.CopyTo(sequence, 1);
        var size = (long)window * vocab;
        if (size > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(window), window, $"A window of {window} tokens × a vocabulary of {vocab} is {size} logits, more than one array holds; use a smaller PerplexityOptions.WindowLength.");
        var logits = new float[size];
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
            session.AppendWithAllLogits(input, logits.AsSpan(0, input.Length * vocab), 0, cancellationToken);
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

    private static string PieceText(ModelRuntime model, int id)
    {
        try
        {
            return model.Tokenizer.TokenText(id);
        }
        catch (Exception e) when (e is ModelFormatException or ArgumentOutOfRangeException)
        {
            return string.Empty; // no tokenizer, or an id the tokenizer does not cover (model vocab larger than tokenizer's)
        }
    }
}
