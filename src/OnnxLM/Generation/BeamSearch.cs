namespace OnnxLM;

/// <summary>
/// Beam search with Hugging Face's scoring (sum of log-softmax log-probs, length penalty, early stopping rules).
/// Each beam owns a <see cref="GenerationSession"/>: a beam's first child continues its parent's cache, further
/// children fork it, dropped beams free theirs — the cache follows the beams instead of being recomputed.
/// </summary>
internal static class BeamSearch
{
    private sealed class Beam(GenerationSession session, int[] tokens, double logProb)
    {
        public GenerationSession Session { get; set; } = session;
        public int[] Tokens { get; } = tokens;
        public double LogProb { get; } = logProb;
    }

    public static List<BeamResult> Run(LanguageModel model, int[] prompt, BeamSearchOptions options, CancellationToken cancellationToken)
    {
        var vocab = model.Info.VocabularySize;
        var stopIds = options.StopTokenIds ?? model.Info.EosTokenIds;
        var maxLength = (int)Math.Min((long)prompt.Length + options.MaxNewTokens, model.Info.ContextLength);
        var finished = new List<(int[] Tokens, double LogProb, double Score, FinishReason Reason)>();
        var live = new List<Beam>();
        var width = options.NumBeams;
        try
        {
            var first = model.CreateSession(maxLength);
            live.Add(new Beam(first, [], 0));
            first.Append(prompt, cancellationToken);
            var logProbs = new float[vocab];
            for (var step = 0; live.Count > 0; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();

                // Best 2·width continuations of every live beam, ranked together.
                var candidates = new List<(int Beam, int Token, double LogProb)>();
                for (var b = 0; b < live.Count; b++)
                {
                    var raw = live[b].Session.NextTokenLogits;
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

                live = Advance(live, next, cancellationToken);
            }
        }
        finally
        {
            foreach (var beam in live) beam.Session.Dispose();
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

    /// <summary>Builds the next beams: the first child of a parent takes over its session, later children fork it.</summary>
    private static List<Beam> Advance(List<Beam> live, List<(int Parent, int Token, double LogProb)> next, CancellationToken cancellationToken)
    {
        var used = new bool[live.Count];
        var result = new List<Beam>(next.Count);
        try
        {
            // Fork before any parent session moves on, so every child starts from its parent's cache.
            var sessions = new GenerationSession[next.Count];
            for (var i = 0; i < next.Count; i++)
            {
                var parent = next[i].Parent;
                sessions[i] = used[parent] ? live[parent].Session.Fork() : live[parent].Session;
                used[parent] = true;
            }

            for (var i = 0; i < next.Count; i++)
            {
                var (parent, token, logProb) = next[i];
                sessions[i].Append([token], cancellationToken);
                result.Add(new Beam(sessions[i], [.. live[parent].Tokens, token], logProb));
            }
        }
        catch
        {
            foreach (var beam in result) beam.Session.Dispose();
            throw;
        }

        for (var p = 0; p < live.Count; p++)
        {
            if (!used[p]) live[p].Session.Dispose();
        }

        return result;
    }

    private static IEnumerable<int> TopIndices(float[] values, int k)
    {
        var order = Enumerable.Range(0, values.Length).ToArray();
        var keys = values.Select(v => -v).ToArray();
        Array.Sort(keys, order);
        return order.Take(Math.Min(k, values.Length));
    }

    private static TextTokenizer? TryTokenizer(LanguageModel model)
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
