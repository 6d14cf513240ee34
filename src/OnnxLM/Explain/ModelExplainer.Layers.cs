using System.Globalization;
using System.Numerics.Tensors;

namespace OnnxLM.Explain;

// The layer views: the logit lens, every head with its summary, and one query's dot products before the softmax.
public sealed partial class ModelExplainer
{
    private LayerGraph? _layerGraph;
    private LayerProbe? _probe;

    /// <summary>
    /// The logit lens over <paramref name="text"/>: each layer's hidden state at each position through the final norm and
    /// the unembedding (read from the graph), with the top tokens and the probability of the model's eventual prediction.
    /// </summary>
    /// <param name="text">The prompt (1 to 512 tokens).</param>
    /// <param name="top">How many of the most likely tokens to keep per layer and position.</param>
    /// <param name="cancellationToken">Cancels the model run.</param>
    /// <exception cref="NotSupportedException">The graph hides the residual stream (fused Skip…LayerNormalization) or its unembedding (quantized), with the reason.</exception>
    public Task<LogitLens> LensAsync(string text, int top = 5, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        var graph = LayerGraph();
        if (graph.LensProblem is { } problem) throw new NotSupportedException(problem);
        var ids = CheckIds(_model.EncodeText(text, null, nameof(text), cancellationToken), nameof(text));
        return Task.Run(() =>
        {
            var n = ids.Length;
            var states = Probe().Run(ids, graph.States, cancellationToken);
            var (vocab, hidden) = (graph.Vocabulary, graph.Hidden);
            var layers = new LensCell[states.Length][];
            var final = new TokenProbability[n];
            var lastProbabilities = new double[n][];
            for (var layer = states.Length - 1; layer >= 0; layer--)
            {
                var (values, shape) = states[layer];
                if (values.Length != n * hidden) throw new ModelFormatException($"The hidden state '{graph.States[layer]}' has shape [{string.Join(", ", shape)}]; expected [1, {n}, {hidden}].", _model.Info.GraphPath);
                layers[layer] = new LensCell[n];
                for (var p = 0; p < n; p++)
                {
                    var probabilities = Unembed(graph, values.AsSpan(p * hidden, hidden));
                    if (layer == states.Length - 1)
                    {
                        var best = ArgMax(probabilities);
                        final[p] = new TokenProbability(best, Label(best), probabilities[best]);
                        lastProbabilities[p] = probabilities;
                    }

                    var target = final[p].Id;
                    var rank = 1 + probabilities.Count(x => x > probabilities[target]);
                    var shown = Enumerable.Range(0, vocab).OrderByDescending(i => probabilities[i]).ThenBy(i => i).Take(top)
                        .Select(i => new TokenProbability(i, Label(i), probabilities[i])).ToList();
                    layers[layer][p] = new LensCell(shown, probabilities[target], rank);
                }
            }

            return new LogitLens([.. ids.Select(Label)], final, layers);
        }, cancellationToken);
    }

    /// <summary>
    /// Every head of every layer over <paramref name="text"/>: the attention probabilities (see <see cref="AttentionAsync(string, CancellationToken)"/>)
    /// and, per head, how much it attends to the previous token, the first token and earlier copies of the same token, and its entropy.
    /// </summary>
    /// <param name="text">The prompt (2 to 512 tokens).</param>
    /// <param name="cancellationToken">Cancels the model run.</param>
    /// <exception cref="NotSupportedException">The graph fuses attention into one operator.</exception>
    public async Task<HeadsExplanation> HeadsAsync(string text, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        _ = AttentionSession(); // a fused graph says so before the text is looked at
        var ids = _model.EncodeText(text, null, nameof(text), cancellationToken);
        if (ids.Length < 2) throw new ArgumentException($"The text has {ids.Length} token(s); head summaries need at least 2.", nameof(text));
        var map = await AttentionAsync(ids, cancellationToken).ConfigureAwait(false);
        var heads = new List<HeadSummary>();
        for (var layer = 0; layer < map.LayerCount; layer++)
        {
            for (var head = 0; head < map.HeadCount; head++) heads.Add(Summarize(map, ids, layer, head));
        }

        return new HeadsExplanation(map, heads);
    }

    internal static HeadSummary Summarize(AttentionMap map, int[] ids, int layer, int head)
    {
        var n = ids.Length;
        double previous = 0, first = 0, entropy = 0, same = 0;
        var sameQueries = 0;
        for (var q = 1; q < n; q++)
        {
            previous += map[layer, head, q, q - 1];
            first += map[layer, head, q, 0];
            double h = 0, copies = 0;
            var hasCopy = false;
            for (var k = 0; k <= q; k++)
            {
                double w = map[layer, head, q, k];
                if (w > 0) h -= w * Math.Log2(w);
                if (k < q && ids[k] == ids[q])
                {
                    copies += w;
                    hasCopy = true;
                }
            }

            entropy += h;
            if (hasCopy)
            {
                same += copies;
                sameQueries++;
            }
        }

        return new HeadSummary(layer, head, previous / (n - 1), first / (n - 1), sameQueries == 0 ? null : same / sameQueries, entropy / (n - 1));
    }

    /// <summary>
    /// For one query position of one layer, every head's raw query·key dot products, the scaling, the mask and the softmax
    /// weights, read from the graph's own tensors (the q·kᵀ MatMul, the softmax input and output).
    /// </summary>
    /// <param name="text">The prompt (1 to 512 tokens).</param>
    /// <param name="layer">The layer (0-based).</param>
    /// <param name="query">The query position (0-based); null for the last token.</param>
    /// <param name="cancellationToken">Cancels the model run.</param>
    /// <exception cref="NotSupportedException">The graph fuses attention into one operator, or its softmax does not read a q·kᵀ MatMul.</exception>
    public Task<QueryKeyScores> QueryKeyAsync(string text, int layer, int? query = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        var graph = LayerGraph();
        if (graph.AttentionProblem is { } problem) throw new NotSupportedException(problem);
        var ids = CheckIds(_model.EncodeText(text, null, nameof(text), cancellationToken), nameof(text));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)layer, (uint)graph.Attention.Count, nameof(layer));
        var n = ids.Length;
        var q = query ?? n - 1;
        if ((uint)q >= (uint)n) throw new ArgumentOutOfRangeException(nameof(query), q, $"The query must be a position from 0 to {n - 1} (the text has {n} tokens).");
        return Task.Run(() =>
        {
            var taps = graph.Attention[layer];
            var tensors = Probe().Run(ids, [taps.Raw, taps.Scores, taps.Weights], cancellationToken);
            var heads = _model.Info.AttentionHeadCount;
            foreach (var (values, shape) in tensors)
            {
                if (values.Length != heads * n * n) throw new ModelFormatException($"Layer {layer}'s attention scores have shape [{string.Join(", ", shape)}]; expected {heads} heads × {n} × {n}.", _model.Info.GraphPath);
            }

            float[] Row(float[] values, int head) => values.AsSpan(((head * n) + q) * n, n).ToArray();
            var raw = Enumerable.Range(0, heads).Select(h => Row(tensors[0].Values, h)).ToList();
            var scaled = raw.Select(r => r.Select(x => (float)(x * taps.Scale)).ToArray()).ToList();
            var scores = Row(tensors[1].Values, 0);
            var mask = scores.Select((s, k) => s > -1e30f && float.IsFinite(s) ? s - scaled[0][k] : (float?)null).ToList();
            var weights = Enumerable.Range(0, heads).Select(h => Row(tensors[2].Values, h)).ToList();
            return new QueryKeyScores([.. ids.Select(Label)], layer, q, taps.Scale, raw, scaled, mask, weights);
        }, cancellationToken);
    }

    private string Label(int id) => _model.HasTokenizer ? TokenText(_model.Tokenizer, id) : id.ToString(CultureInfo.InvariantCulture);

    internal LayerGraph LayerGraph()
    {
        lock (_lock)
        {
            return _layerGraph ??= new LayerGraph(_file.Value, _model.Runtime.Graph.Signature.Logits, _model.Info.LayerCount);
        }
    }

    /// <summary>The session with the residual stream and attention tensors as outputs, built once.</summary>
    private LayerProbe Probe()
    {
        var graph = LayerGraph();
        lock (_lock)
        {
            return _probe ??= new LayerProbe(_model, _file.Value, [.. graph.States, .. graph.Attention.SelectMany(a => new[] { a.Raw, a.Scores, a.Weights })]);
        }
    }

    /// <summary>A probe with extra tensors as outputs (tests read q and kᵀ through it); the caller disposes it.</summary>
    internal LayerProbe Probe(IReadOnlyList<string> outputs) => new(_model, _file.Value, outputs);

    /// <summary>softmax(unembedding · norm(x)) in double.</summary>
    internal static double[] Unembed(LayerGraph graph, ReadOnlySpan<float> x)
    {
        var (vocab, hidden, norm) = (graph.Vocabulary, graph.Hidden, graph.Norm!);
        var y = new float[hidden];
        if (norm.Kind == "None")
        {
            x.CopyTo(y);
        }
        else
        {
            double mean = 0;
            if (norm.Kind == "LayerNorm")
            {
                foreach (var v in x) mean += v;
                mean /= hidden;
            }

            double square = 0;
            foreach (var v in x) square += (v - mean) * (v - mean);
            var inverse = 1 / Math.Sqrt((square / hidden) + norm.Epsilon);
            for (var i = 0; i < hidden; i++) y[i] = (float)(((x[i] - mean) * inverse * norm.Weight![i]) + (norm.Bias?[i] ?? 0));
        }

        var logits = new double[vocab];
        var matrix = graph.Unembedding.AsSpan();
        var max = double.MinValue;
        for (var v = 0; v < vocab; v++)
        {
            logits[v] = TensorPrimitives.Dot(matrix.Slice(v * hidden, hidden), y) + (graph.UnembeddingBias?[v] ?? 0);
            max = Math.Max(max, logits[v]);
        }

        double sum = 0;
        for (var v = 0; v < vocab; v++) sum += logits[v] = Math.Exp(logits[v] - max);
        for (var v = 0; v < vocab; v++) logits[v] /= sum;
        return logits;
    }

    private static int ArgMax(double[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best]) best = i;
        }

        return best;
    }

    private void DisposeLayers()
    {
        lock (_lock)
        {
            _probe?.Dispose();
            _probe = null;
        }
    }
}
