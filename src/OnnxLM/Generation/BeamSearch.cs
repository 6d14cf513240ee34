using OnnxLM.Sampling;

namespace OnnxLM;

/// <summary>
/// Beam search with Hugging Face's scoring (sum of log-softmax log-probs, length penalty, early stopping rules).
/// The cache follows the beams instead of being recomputed: with batching on (<see cref="LanguageModelOptions.MaxBatchSize"/>)
/// the beams are rows of one <see cref="BatchedCache"/>, all advanced by one model run per step (rows re-gathered from their
/// parents between steps); otherwise each beam owns a <see cref="GenerationSession"/>, a beam's first child continues its
/// parent's cache, further children fork it and dropped beams free theirs.
/// </summary>
internal static class BeamSearch
{
    private sealed class Beam(int[] tokens, double logProb)
    {
        public int[] Tokens { get; } = tokens;
        public double LogProb { get; } = logProb;
    }

    /// <summary>The caches of the live beams, in beam order.</summary>
    private abstract class BeamCaches : IDisposable
    {
        /// <summary>The raw next-token logits of beam <paramref name="beam"/>.</summary>
        public abstract ReadOnlySpan<float> Logits(int beam);

        /// <summary>Replaces the beams: new beam i continues old beam <paramref name="parents"/>[i] with <paramref name="tokens"/>[i].</summary>
        public abstract void Advance(int[] parents, int[] tokens, CancellationToken cancellationToken);

        public abstract void Dispose();
    }

    /// <summary>One session per beam: the first child takes over its parent's session, later children fork it.</summary>
    private sealed class SessionCaches(GenerationSession first) : BeamCaches
    {
        private List<GenerationSession> _sessions = [first];

        public override ReadOnlySpan<float> Logits(int beam) => _sessions[beam].NextTokenLogits;

        public override void Advance(int[] parents, int[] tokens, CancellationToken cancellationToken)
        {
            var used = new bool[_sessions.Count];
            var result = new List<GenerationSession>(parents.Length);
            try
            {
                // Fork before any parent session moves on, so every child starts from its parent's cache.
                for (var i = 0; i < parents.Length; i++)
                {
                    var parent = parents[i];
                    result.Add(used[parent] ? _sessions[parent].Fork() : _sessions[parent]);
                    used[parent] = true;
                }

                for (var i = 0; i < parents.Length; i++)
                {
                    result[i].Append([tokens[i]], cancellationToken);
                }
            }
            catch
            {
                // The search ends: free every session, taken over or forked (disposing twice is harmless).
                foreach (var session in result) session.Dispose();
                Dispose();
                throw;
            }

            for (var p = 0; p < _sessions.Count; p++)
            {
                if (!used[p]) _sessions[p].Dispose();
            }

            _sessions = result;
        }

        public override void Dispose()
        {
            foreach (var session in _sessions) session.Dispose();
            _sessions.Clear();
        }
    }

    /// <summary>The beams as rows of one batched cache: one run per step for all of them.</summary>
    private sealed class BatchedCaches(ModelRuntime model, int[] prompt, CancellationToken cancellationToken) : BeamCaches
    {
        private readonly BatchedCache _cache = Prefilled(model, prompt, cancellationToken);

        private static BatchedCache Prefilled(ModelRuntime model, int[] prompt, CancellationToken cancellationToken)
        {
            var cache = new BatchedCache(model);
            try
            {
                using var run = model.EnterRun();
                cache.Add(prompt, 1, cancellationToken);
                return cache;
            }
            catch
            {
                cache.Dispose();
                throw;
            }
        }

        public override ReadOnlySpan<float> Logits(int beam) => _cache.Logits(beam);

        public override void Advance(int[] parents, int[] tokens, CancellationToken cancellationToken)
        {
            using var run = model.EnterRun();
            _cache.Select(parents);
            _cache.Step(tokens, cancellationToken);
        }

        public override void Dispose() => _cache.Dispose();
    }

    public static List<BeamResult> Run(ModelRuntime model, int[] prompt, BeamSearchOptions options, CancellationToken cancellationToken)
    {
        var vocab = model.Info.VocabularySize;
        var stopIds = options.StopTokenIds ?? model.Info.EosTokenIds;
        var maxLength = (int)Math.Min((long)prompt.Length + options.MaxNewTokens, model.Info.ContextLength);
        var finished = new List<(int[] Tokens, double LogProb, double Score, FinishReason Reason)>();
        var live = new List<Beam> { new([], 0) };
        var width = options.NumBeams;
        using var caches = CreateCaches(model, prompt, maxLength, cancellationToken);
        var logProbs = new float[vocab];
        for (var step = 0; live.Count > 0; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();

            // Best 2·width continuations of every live beam, ranked together.
            var candidates = new List<(int Beam, int Token, double LogProb)>();
            for (var b = 0; b < live.Count; b++)
            {
                var raw = caches.Logits(b);
                var lse = SamplingMath.LogSumExp(raw);
                for (var i = 0; i < vocab; i++) logProbs[i] = (float)(raw[i] - lse);
                foreach (var token in TopIndices(logProbs, 2 * width))
                {
                    candidates.Add((b, token, live[b].LogProb + (raw[token] - lse)));
                }
            }

            candidates.Sort((x, y) => y.LogProb != x.LogProb ? y.LogProb.CompareTo(x.LogProb) : (x.Beam, x.Token).CompareTo((y.Beam, y.Token)));
            var generated = step + 1;
            var next = new List<(int Parent, int Token, double LogProb)>();
            for (var rank = 0; rank < candidates.Count && next.Count < width; rank++)
            {
                var (parent, token, logProb) = candidates[rank];
                if (stopIds.Contains(token))
                {
                    // As in Hugging Face, a stop token only finishes a hypothesis when it ranks among the top `width`.
                    if (rank < width) finished.Add(([.. live[parent].Tokens, token], logProb, logProb / Math.Pow(generated, options.LengthPenalty), FinishReason.Stop));
                    continue;
                }

                next.Add((parent, token, logProb));
            }

            var atLimit = prompt.Length + generated >= maxLength;
            var best = next.Count > 0 ? next.Max(n => n.LogProb) : double.NegativeInfinity;
            var done = next.Count == 0 || atLimit || IsDone(finished, width, options, best, generated);
            if (done)
            {
                if (atLimit || finished.Count < width)
                {
                    foreach (var (parent, token, logProb) in next.Take(Math.Max(0, width - finished.Count)))
                    {
                        finished.Add(([.. live[parent].Tokens, token], logProb, logProb / Math.Pow(generated, options.LengthPenalty), FinishReason.Length));
                    }
                }

                break;
            }

            caches.Advance(next.Select(n => n.Parent).ToArray(), next.Select(n => n.Token).ToArray(), cancellationToken);
            live = next.Select(n => new Beam([.. live[n.Parent].Tokens, n.Token], n.LogProb)).ToList();
        }

        var tokenizer = TryTokenizer(model);
        return finished
            .OrderByDescending(f => f.Score)
            .Take(width)
            .Select(f => new BeamResult(f.Tokens, tokenizer?.Decode(f.Tokens, skipSpecialTokens: true) ?? string.Empty, f.LogProb, f.Score, f.Reason))
            .ToList();
    }

    /// <summary>Hugging Face's stopping rule: with early stopping, once `width` hypotheses exist; otherwise when the best running beam cannot beat the worst kept one.</summary>
    private static bool IsDone(List<(int[] Tokens, double LogProb, double Score, FinishReason Reason)> finished, int width, BeamSearchOptions options, double bestRunning, int generated)
    {
        if (finished.Count < width) return false;
        if (options.EarlyStopping) return true;
        var worstKept = finished.Select(f => f.Score).OrderByDescending(s => s).Take(width).Min();
        return bestRunning / Math.Pow(generated, options.LengthPenalty) < worstKept;
    }

    private static BeamCaches CreateCaches(ModelRuntime model, int[] prompt, int maxLength, CancellationToken cancellationToken)
    {
        if (model.Scheduler is not null)
        {
            return new BatchedCaches(model, prompt, cancellationToken);
        }

        var first = model.CreateSession(maxLength);
        try
        {
            first.Append(prompt, cancellationToken);
            return new SessionCaches(first);
        }
        catch
        {
            first.Dispose();
            throw;
        }
    }

    private static IEnumerable<int> TopIndices(float[] values, int k)
    {
        var order = Enumerable.Range(0, values.Length).ToArray();
        var keys = values.Select(v => -v).ToArray();
        Array.Sort(keys, order);
        return order.Take(Math.Min(k, values.Length));
    }

    private static TextTokenizer? TryTokenizer(ModelRuntime model)
    {
        try
        {
            return model.Tokenizer;
        }
        catch (ModelFormatException)
        {
            return null;
        }
    }
}
