using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM.Explain;

/// <summary>
/// Views inside a loaded model, as data: how text becomes tokens, what the model predicts next and how temperature
/// reshapes it, how surprising each token is, where attention goes, what the embeddings look like, where the
/// parameters are, and what the KV cache saves. Create one per model (<see cref="LanguageModel.Explain"/>); dispose it
/// to free the attention session it may build.
/// </summary>
public sealed partial class ModelExplainer : IDisposable
{
    private readonly LanguageModel _model;
    private readonly Lazy<OnnxModelFile> _file;
    private readonly Lock _lock = new();
    private InferenceSession? _attentionSession;
    private string[]? _attentionOutputs;
    private float[]? _embeddings;
    private int _hidden;

    internal ModelExplainer(LanguageModel model)
    {
        _model = model;
        _file = new Lazy<OnnxModelFile>(() => OnnxModelFile.Read(model.Info.GraphPath));
    }

    /// <summary>The tokens of <paramref name="text"/> and, word by word, the byte-pair merges that built them (see <see cref="TextTokenizer.Explain"/>).</summary>
    public TokenizationExplanation Tokens(string text) => _model.Tokenizer.Explain(text);

    /// <summary>The next-token distribution after a prompt at several temperatures (default 0, 0.5, 1, 1.5, 2).</summary>
    /// <param name="prompt">The text before the next token.</param>
    /// <param name="top">How many of the most likely tokens to list.</param>
    /// <param name="temperatures">Temperatures to compare (0 = greedy); null for 0, 0.5, 1, 1.5 and 2.</param>
    /// <param name="topP">The top-p threshold whose kept-token count is reported.</param>
    /// <param name="minP">The min-p threshold whose kept-token count is reported.</param>
    /// <param name="cancellationToken">Cancels the model run.</param>
    public Task<NextTokenExplanation> NextTokenAsync(string prompt, int top = 10, IReadOnlyList<float>? temperatures = null, float topP = 0.9f, float minP = 0.05f,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        if (topP is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(topP), topP, "topP must be in (0, 1].");
        if (minP is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(minP), minP, "minP must be in [0, 1].");
        temperatures ??= [0f, 0.5f, 1f, 1.5f, 2f];
        foreach (var t in temperatures)
        {
            if (!float.IsFinite(t) || t < 0) throw new ArgumentOutOfRangeException(nameof(temperatures), t, "Temperatures must be finite and not negative.");
        }

        var ids = _model.EncodeText(prompt, null, nameof(prompt), cancellationToken);
        if (ids.Length == 0) throw new ArgumentException("The prompt has no tokens.", nameof(prompt));
        return Task.Run(() =>
        {
            using var session = _model.CreateSession(Math.Min(_model.Info.ContextLength, ids.Length + 1));
            session.Append(ids, cancellationToken);
            var logits = session.NextTokenLogits.ToArray();
            var views = temperatures.Select(t => View(logits, t, top, topP, minP)).ToList();
            return new NextTokenExplanation(prompt, ids.Length, topP, minP, views);
        }, cancellationToken);
    }

    /// <summary>The distribution softmax(logits / T) summarised; T = 0 is the argmax with probability 1.</summary>
    internal TemperatureView View(float[] logits, float temperature, int top, float topP, float minP)
    {
        var tokenizer = _model.Tokenizer;
        var order = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).ToArray();
        var p = new double[logits.Length];
        if (temperature == 0)
        {
            p[order[0]] = 1;
        }
        else
        {
            var max = logits[order[0]];
            double sum = 0;
            for (var i = 0; i < logits.Length; i++) sum += p[i] = Math.Exp((logits[i] - max) / temperature);
            for (var i = 0; i < logits.Length; i++) p[i] /= sum;
        }

        double entropy = 0;
        foreach (var x in p)
        {
            if (x > 0) entropy -= x * Math.Log2(x);
        }

        var shown = order.Take(top).Select(i => new TokenProbability(i, TokenText(tokenizer, i), p[i])).ToList();
        int topPKeeps = 0;
        for (double cumulative = 0; topPKeeps < order.Length && cumulative < topP; topPKeeps++) cumulative += p[order[topPKeeps]];
        var minPKeeps = p.Count(x => x >= minP * p[order[0]]);
        return new TemperatureView(temperature, shown, entropy, shown.Sum(s => s.Probability), topPKeeps, minPKeeps);
    }

    private static string TokenText(TextTokenizer tokenizer, int id) =>
        id < tokenizer.VocabularySize ? tokenizer.TokenText(id) : $"<{id}>";

    /// <summary>How surprising each token of <paramref name="text"/> is: −log₂ p given the tokens before it (after BOS when the model has one).</summary>
    public async Task<SurpriseExplanation> SurpriseAsync(string text, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        var tokenizer = _model.Tokenizer;
        var ids = _model.EncodeText(text, addBos: false, nameof(text), cancellationToken);
        if (ids.Length == 0) throw new ArgumentException("The text has no tokens.", nameof(text));
        int[] context = tokenizer.BosTokenId is { } bos ? [bos] : [ids[0]];
        var continuation = tokenizer.BosTokenId is null ? ids[1..] : ids;
        if (continuation.Length == 0) throw new ArgumentException("The text has one token and the model no BOS token: nothing to score.", nameof(text));
        var score = await _model.ScoreAsync(context, continuation, cancellationToken).ConfigureAwait(false);
        var tokens = score.Tokens.Select(t => new TokenSurprise(t.Id, t.Text, Math.Exp(t.LogProb), -t.LogProb / Math.Log(2), t.Rank)).ToList();
        return new SurpriseExplanation(text, tokens, tokens.Average(t => t.SurpriseBits));
    }

    /// <summary>
    /// The attention probabilities of every layer and head over <paramref name="text"/>. For graphs with standard
    /// operators the softmax outputs of attention are added as graph outputs (once, in a second session); graphs
    /// built with <c>onnxlm convert --attentions</c> return them already.
    /// </summary>
    /// <exception cref="NotSupportedException">The graph fuses attention into one operator (GroupQueryAttention, MultiHeadAttention), which does not expose the probabilities.</exception>
    public Task<AttentionMap> AttentionAsync(string text, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        return AttentionAsync(_model.EncodeText(text, null, nameof(text), cancellationToken), cancellationToken);
    }

    /// <summary>The attention probabilities of every layer and head over a sequence of token ids (models without a tokenizer too).</summary>
    public Task<AttentionMap> AttentionAsync(IReadOnlyList<int> tokenIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tokenIds);
        var ids = tokenIds.ToArray();
        if (ids.Length is 0 or > 512) throw new ArgumentException($"The sequence has {ids.Length} tokens; attention maps are for 1 to 512.", nameof(tokenIds));
        GraphRun.CheckTokenIds(ids, _model.Info.VocabularySize, nameof(tokenIds));
        return Task.Run(() =>
        {
            var (session, outputs) = AttentionSession();
            var n = ids.Length;
            using var feed = new GraphFeed(_model.Runtime.Graph);
            feed.Begin(1, n, 0);
            feed.Row(0, ids, 0);
            using var runOptions = new RunOptions();
            using var results = feed.Run(session, runOptions, null, outputs, cancellationToken);
            // [1, heads, n, n], or [1, kv heads, group, n, n] where an exporter repeats kv heads after the scores (head = kv × group + g).
            var heads = (int)results[0].GetTensorTypeAndShape().Shape[1..^2].Aggregate(1L, (a, b) => a * b);
            var weights = new float[outputs.Length * heads * n * n];
            for (var layer = 0; layer < outputs.Length; layer++)
            {
                var shape = results[layer].GetTensorTypeAndShape();
                if (shape.Shape is not [1, .., var q, var k] || shape.Shape[1..^2].Aggregate(1L, (a, b) => a * b) != heads || q != n || k != n)
                {
                    throw new ModelFormatException($"Attention output '{outputs[layer]}' has shape [{string.Join(", ", shape.Shape)}]; expected [1, {heads}, {n}, {n}].", _model.Info.GraphPath);
                }

                GraphRun.CopyAsFloat(results[layer], shape.ElementDataType, 0, heads * n * n, weights.AsSpan(layer * heads * n * n, heads * n * n));
            }

            var labels = ids.Select(id => _model.HasTokenizer ? TokenText(_model.Tokenizer, id) : id.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
            return new AttentionMap(labels, outputs.Length, heads, weights);
        }, cancellationToken);
    }

    private (InferenceSession Session, string[] Outputs) AttentionSession()
    {
        lock (_lock)
        {
            if (_attentionSession is not null) return (_attentionSession, _attentionOutputs!);
            var file = _file.Value;
            var built = file.Outputs.Where(o => o.StartsWith("attentions.", StringComparison.Ordinal))
                .OrderBy(o => int.TryParse(o["attentions.".Length..], out var i) ? i : int.MaxValue).ToArray();
            if (built.Length > 0)
            {
                _attentionOutputs = built;
                _attentionSession = _model.Runtime.Graph.Session;
                return (_attentionSession, built);
            }

            var softmax = file.Nodes.Where(n => n.OpType == "Softmax").Select(n => n.Outputs[0]).ToArray();
            if (softmax.Length == 0)
            {
                var fused = file.Nodes.FirstOrDefault(n => n.OpType is "GroupQueryAttention" or "MultiHeadAttention" or "Attention" or "PackedAttention")?.OpType;
                throw new NotSupportedException(fused is not null
                    ? $"The graph computes attention in one fused {fused} operator, which does not expose its probabilities; build the model with standard operators (onnxlm convert --attention standard) to see attention."
                    : "The graph has no Softmax node, so its attention probabilities cannot be read.");
            }

            using var options = new SessionOptions();
            options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", Path.GetDirectoryName(_model.Info.GraphPath)!);
            _attentionSession = new InferenceSession(file.WithExtraOutputs(softmax), options);
            _attentionOutputs = softmax;
            return (_attentionSession, softmax);
        }
    }

    /// <summary>Where the parameters are: initializers grouped by the part of the model they belong to, from their names.</summary>
    public ParameterBreakdown Parameters()
    {
        var groups = new Dictionary<string, (long Count, int Tensors)>();
        long bytes = 0;
        var file = _file.Value;
        foreach (var init in file.Initializers.Values)
        {
            bytes += init.ByteCount;
            var parameters = file.ParameterCount(init);
            if (parameters == 0 && init.ElementCount > 0) continue; // quantization scales and zero points
            var component = Component(init.Name);
            var (count, tensors) = groups.GetValueOrDefault(component);
            groups[component] = (count + parameters, tensors + 1);
        }

        var total = groups.Values.Sum(g => g.Count);
        return new ParameterBreakdown(total, [.. groups.OrderByDescending(g => g.Value.Count)
            .Select(g => new ParameterGroup(g.Key, g.Value.Count, g.Value.Tensors, total == 0 ? 0 : (double)g.Value.Count / total))])
        {
            Bytes = bytes,
        };
    }

    internal static string Component(string name)
    {
        var n = name.ToLowerInvariant();
        if (n.Contains("embed") || n.Contains("wte") || n.Contains("wpe")) return "embeddings";
        if (n.Contains("lm_head") || n is "output.weight") return "output head";
        if (n.Contains("norm") || n.Contains("ln_") || n.Contains(".ln")) return "norms";
        if (n.Contains("mlp") || n.Contains("gate_proj") || n.Contains("up_proj") || n.Contains("down_proj") || n.Contains("c_fc") || n.Contains("ffn") || n.Contains("feed_forward")) return "MLP";
        if (n.Contains("attn") || n.Contains("attention") || n.Contains("q_proj") || n.Contains("k_proj") || n.Contains("v_proj") || n.Contains("o_proj") || n.Contains("qkv")) return "attention";
        return "other (position tables, constants)";
    }

    /// <summary>The token-embedding matrix [vocabulary, hidden], read from the initializer the input ids index (through casts).</summary>
    private (float[] Matrix, int Hidden) Embeddings()
    {
        lock (_lock)
        {
            if (_embeddings is not null) return (_embeddings, _hidden);
            var file = _file.Value;
            var inputIds = _model.Runtime.Graph.Signature.InputIds;
            var gather = file.Nodes.FirstOrDefault(n => n.OpType == "Gather" && n.Inputs.Count == 2 && n.Inputs[1] == inputIds)
                ?? throw new NotSupportedException($"No Gather node reads '{inputIds}', so the token embeddings cannot be found in the graph.");
            var source = gather.Inputs[0];
            for (var hops = 0; hops < 4 && !file.Initializers.ContainsKey(source); hops++)
            {
                source = file.Nodes.FirstOrDefault(n => n.Outputs.Contains(source) && n.OpType is "Cast" or "Identity" or "DequantizeLinear")?.Inputs[0] ?? source;
            }

            var init = file.Initializers.GetValueOrDefault(source) ?? throw new NotSupportedException($"The token embeddings ('{gather.Inputs[0]}') are not a plain initializer.");
            if (init.Dims is not [var vocab, var hidden]) throw new ModelFormatException($"The embedding initializer '{init.Name}' has shape [{string.Join(", ", init.Dims)}], not [vocabulary, hidden].", _model.Info.GraphPath);
            (_embeddings, _hidden) = (file.ReadFloats(init), (int)hidden);
            _ = vocab;
            return (_embeddings, _hidden);
        }
    }

    private double Cosine(float[] m, int hidden, int a, int b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < hidden; i++)
        {
            double x = m[(a * hidden) + i], y = m[(b * hidden) + i];
            dot += x * y;
            na += x * x;
            nb += y * y;
        }

        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }

    private static double Cosine(ReadOnlySpan<double> a, float[] m, int hidden, int b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < hidden; i++)
        {
            double y = m[(b * hidden) + i];
            dot += a[i] * y;
            na += a[i] * a[i];
            nb += y * y;
        }

        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }

    /// <summary>The tokens whose embeddings are closest (cosine) to the embedding of <paramref name="tokenId"/>; the first is the token itself.</summary>
    public IReadOnlyList<TokenSimilarity> NearestTokens(int tokenId, int count = 10)
    {
        var (m, hidden) = Embeddings();
        var vocab = m.Length / hidden;
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)tokenId, (uint)vocab, nameof(tokenId));
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        return Rank(Enumerable.Range(0, vocab).Select(i => (i, Cosine(m, hidden, tokenId, i))), count);
    }

    /// <summary>The tokens nearest to embedding(a) − embedding(b) + embedding(c) (the classic analogy), leaving out a, b and c.</summary>
    public IReadOnlyList<TokenSimilarity> Analogy(int a, int b, int c, int count = 5)
    {
        var (m, hidden) = Embeddings();
        var vocab = m.Length / hidden;
        foreach (var (id, name) in (ReadOnlySpan<(int, string)>)[(a, nameof(a)), (b, nameof(b)), (c, nameof(c))])
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)id, (uint)vocab, name);
        }

        var target = new double[hidden];
        for (var i = 0; i < hidden; i++) target[i] = m[(a * hidden) + i] - m[(b * hidden) + i] + m[(c * hidden) + i];
        return Rank(Enumerable.Range(0, vocab).Where(i => i != a && i != b && i != c).Select(i => (i, Cosine(target, m, hidden, i))), count);
    }

    private List<TokenSimilarity> Rank(IEnumerable<(int Id, double Cosine)> scored, int count) =>
        [.. scored.OrderByDescending(s => s.Cosine).ThenBy(s => s.Id).Take(count).Select(s => new TokenSimilarity(s.Id, TokenText(_model.Tokenizer, s.Id), s.Cosine))];

    /// <summary>Cosine similarity between random pairs of distinct token embeddings: in many dimensions, most pairs are nearly orthogonal.</summary>
    public CosineSummary RandomPairCosines(int pairs = 2000, int seed = 0, int bins = 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pairs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 1);
        var (m, hidden) = Embeddings();
        var vocab = m.Length / hidden;
        var random = new Random(seed);
        var values = new double[pairs];
        for (var i = 0; i < pairs; i++)
        {
            int x = random.Next(vocab), y;
            do y = random.Next(vocab); while (y == x && vocab > 1);
            values[i] = Cosine(m, hidden, x, y);
        }

        var mean = values.Average();
        var sd = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
        var histogram = new int[bins];
        foreach (var v in values) histogram[Math.Clamp((int)((v + 1) / 2 * bins), 0, bins - 1)]++;
        return new CosineSummary(pairs, mean, sd, values.Average(Math.Abs), histogram, -1, 1);
    }

    /// <summary>
    /// What the KV cache costs and saves: its bytes per token, and at growing lengths the time of one decoding step
    /// with the cache, of the same step recomputing the whole prefix without it, and of a prefill of that length.
    /// </summary>
    public Task<CacheExplanation> CacheAsync(IReadOnlyList<int>? lengths = null, int repeats = 3, CancellationToken cancellationToken = default)
    {
        var info = _model.Info;
        var context = Math.Min(info.ContextLength, 4096);
        lengths ??= [.. new[] { 8, 16, 32, 64, 128, 256, 512, 1024 }.Where(l => l < context)];
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        foreach (var l in lengths)
        {
            if (l < 1 || l >= info.ContextLength) throw new ArgumentOutOfRangeException(nameof(lengths), l, $"Lengths must be between 1 and the context length {info.ContextLength} − 1.");
        }

        var perToken = info.KvCacheBytesPerToken;
        return Task.Run(() =>
        {
            var seedIds = _model.Tokenizer.Encode("In the beginning God created the heaven and the earth. ", addSpecialTokens: false);
            var ids = new List<int>();
            while (ids.Count <= lengths.Max()) ids.AddRange(seedIds);
            var timings = new List<CacheTiming>();
            foreach (var length in lengths)
            {
                var prefix = ids.Take(length).ToArray();
                double Best(Action run)
                {
                    var best = double.MaxValue;
                    for (var r = 0; r < repeats; r++)
                    {
                        var clock = Stopwatch.StartNew();
                        run();
                        best = Math.Min(best, clock.Elapsed.TotalMilliseconds);
                    }

                    return best;
                }

                using var session = _model.CreateSession(length + 1);
                session.Append(prefix, cancellationToken);
                var next = ids[length];
                var cached = double.MaxValue;
                for (var r = 0; r < repeats; r++)
                {
                    var clock = Stopwatch.StartNew();
                    session.Append(next); // one step over the cache
                    cached = Math.Min(cached, clock.Elapsed.TotalMilliseconds);
                    session.Rewind(length); // not timed: back to the prefix for the next repeat
                }

                var recompute = Best(() => { using var fresh = _model.CreateSession(length + 1); fresh.Append([.. prefix, next], cancellationToken); });
                var prefill = Best(() => { using var fresh = _model.CreateSession(length); fresh.Append(prefix, cancellationToken); });
                timings.Add(new CacheTiming(length, cached, recompute, prefill));
            }

            return new CacheExplanation(perToken, perToken * info.ContextLength, info.ContextLength, timings);
        }, cancellationToken);
    }

    /// <summary>Frees the attention session, if one was built.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_attentionSession is not null && !ReferenceEquals(_attentionSession, _model.Runtime.Graph.Session)) _attentionSession.Dispose();
            _attentionSession = null;
        }

        DisposeLayers();
    }
}
