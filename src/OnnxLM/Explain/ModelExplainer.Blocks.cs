using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM.Explain;

/// <summary>The block views: what attention and MLP blocks add to the residual stream, ablations, near-orthogonality, the cost of context.</summary>
public sealed partial class ModelExplainer
{
    private ResidualStream? _residual;

    /// <summary>The residual stream as the graph computes it: the embedding, then per layer the attention branch and the MLP branch added in.</summary>
    /// <param name="Embedding">The tensor the first residual addition starts from.</param>
    /// <param name="Adds">The residual additions in order (two per layer: attention, then MLP).</param>
    private sealed record ResidualStream(string Embedding, IReadOnlyList<ResidualAdd> Adds);

    /// <summary>One residual addition: <c>Sum = Residual + Branch</c>.</summary>
    private sealed record ResidualAdd(string Residual, string Branch, string Sum);

    /// <summary>
    /// Per layer, the norms of what the attention block and the MLP block add to the residual stream at each position
    /// of <paramref name="text"/>. The branch tensors are found structurally (the chain of residual additions feeding
    /// the final norm) and added as outputs of a second session that is disposed after the run.
    /// </summary>
    /// <exception cref="NotSupportedException">The graph fuses the residual additions (SkipLayerNormalization and kin) or its additions do not form two per layer.</exception>
    public Task<BlockContributions> ContributionsAsync(string text, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        var ids = CheckIds(_model.EncodeText(text, null, nameof(text), cancellationToken), nameof(text));
        return Task.Run(() => Contributions(ids, cancellationToken), cancellationToken);
    }

    /// <summary>The block contributions over token ids (models without a tokenizer too).</summary>
    internal BlockContributions Contributions(int[] ids, CancellationToken cancellationToken = default)
    {
        {
            var (embedding, attention, mlp, n, hidden) = ResidualTensors(ids, cancellationToken);
            double Norm(float[] tensor, int position)
            {
                double sum = 0;
                for (var j = 0; j < hidden; j++) sum += (double)tensor[(position * hidden) + j] * tensor[(position * hidden) + j];
                return Math.Sqrt(sum);
            }

            var stream = (float[])embedding.Clone();
            var residual = new IReadOnlyList<double>[attention.Length];
            for (var layer = 0; layer < attention.Length; layer++)
            {
                for (var i = 0; i < stream.Length; i++) stream[i] += attention[layer][i] + mlp[layer][i];
                residual[layer] = [.. Enumerable.Range(0, n).Select(p => Norm(stream, p))];
            }

            return new BlockContributions(Labels(ids), [.. Enumerable.Range(0, n).Select(p => Norm(embedding, p))],
                [.. attention.Select(a => (IReadOnlyList<double>)[.. Enumerable.Range(0, n).Select(p => Norm(a, p))])],
                [.. mlp.Select(m => (IReadOnlyList<double>)[.. Enumerable.Range(0, n).Select(p => Norm(m, p))])], residual);
        }
    }

    /// <summary>
    /// Zeroes one block and compares the next-token distribution after <paramref name="prompt"/> with the plain run's:
    /// a layer's MLP output (<paramref name="head"/> null: the MLP's residual addition becomes the identity) or one head's
    /// attention output (its weighted values multiplied by 0 before the output projection). The rewritten graph runs in
    /// a separate session that is disposed after the run.
    /// </summary>
    /// <param name="prompt">The text before the next token.</param>
    /// <param name="layer">The layer, from 0.</param>
    /// <param name="head">The head to zero, or null to zero the layer's MLP.</param>
    /// <param name="top">How many of the most likely tokens to list before and after.</param>
    /// <param name="cancellationToken">Cancels the model runs.</param>
    /// <exception cref="NotSupportedException">The graph fuses the residual additions (MLP) or attention (heads) into operators that cannot be zeroed apart.</exception>
    public Task<AblationResult> AblateAsync(string prompt, int layer, int? head = null, int top = 10, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(prompt);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)layer, (uint)_model.Info.LayerCount, nameof(layer));
        if (head is { } h) ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)h, (uint)_model.Info.AttentionHeadCount, nameof(head));
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        var ids = CheckIds(_model.EncodeText(prompt, null, nameof(prompt), cancellationToken), nameof(prompt));
        return Task.Run(() =>
        {
            using var session = _model.CreateSession(Math.Min(_model.Info.ContextLength, ids.Length + 1));
            session.Append(ids, cancellationToken);
            var before = Softmax(session.NextTokenLogits);
            var after = Softmax(AblatedLogits(ids, layer, head, cancellationToken));
            double kl = 0;
            for (var i = 0; i < before.Length; i++)
            {
                if (before[i] > 0) kl += before[i] * Math.Log2(before[i] / Math.Max(after[i], double.Epsilon));
            }

            var best = Top(before, 1)[0];
            return new AblationResult(prompt, layer, head, Top(before, top), Top(after, top), Math.Max(0, kl), best, after[best.Id]);
        }, cancellationToken);
    }

    /// <summary>
    /// Near-orthogonality at the model's width: cosines of random Gaussian directions against those of token embeddings
    /// (one histogram range for both), and a greedy random search for directions with every pairwise |cosine| below
    /// <paramref name="epsilon"/>, at the width and in three dimensions.
    /// </summary>
    /// <param name="pairs">Pairs sampled for each cosine distribution.</param>
    /// <param name="epsilon">The |cosine| bound, in (0, 1).</param>
    /// <param name="seed">Seeds every random draw (the same seed gives the same numbers).</param>
    /// <param name="bins">Histogram bins.</param>
    /// <param name="searchLimit">The most directions the search keeps; it also stops after 500 candidates in a row fail.</param>
    public DimensionsExplanation Dimensions(int pairs = 2000, double epsilon = 0.1, int seed = 0, int bins = 30, int searchLimit = 1000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pairs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(bins, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(searchLimit, 1);
        if (!(epsilon is > 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be in (0, 1).");
        var (m, width) = Embeddings();
        var vocab = m.Length / width;
        var random = new Random(seed);
        var a = new double[width];
        var b = new double[width];
        var randomCosines = new double[pairs];
        for (var i = 0; i < pairs; i++)
        {
            Gaussian(random, a);
            Gaussian(random, b);
            randomCosines[i] = Cosine(a, b);
        }

        var tokenCosines = new double[pairs];
        for (var i = 0; i < pairs; i++)
        {
            int x = random.Next(vocab), y;
            do y = random.Next(vocab); while (y == x && vocab > 1);
            tokenCosines[i] = Cosine(m, width, x, y);
        }

        // One range for both histograms, so their widths compare at a glance: the larger |cosine| seen, rounded up to 0.05.
        var range = Math.Min(1, Math.Ceiling(randomCosines.Concat(tokenCosines).Max(Math.Abs) * 20 + 1e-9) / 20);
        var jl = Math.Exp(width * ((epsilon * epsilon / 2) - (epsilon * epsilon * epsilon / 3)) / 4);
        return new DimensionsExplanation(width, Summarize(randomCosines, bins, range), Summarize(tokenCosines, bins, range), epsilon,
            NearlyOrthogonal(width, epsilon, searchLimit, new Random(seed)), NearlyOrthogonal(3, epsilon, searchLimit, new Random(seed)), searchLimit, jl);
    }

    /// <summary>
    /// What one decoding step costs as the context grows: at each length the step with the KV cache and the same step
    /// recomputing the whole prefix (best of <paramref name="repeats"/>), the memory of the cache and of the step's
    /// attention scores (from the model's geometry), and fits of time against length.
    /// </summary>
    /// <param name="lengths">Context lengths (at least three, each below the context length); null for powers and steps up to 1,024.</param>
    /// <param name="repeats">Runs per measurement; the fastest counts.</param>
    /// <param name="cancellationToken">Cancels between runs.</param>
    public Task<CostExplanation> CostAsync(IReadOnlyList<int>? lengths = null, int repeats = 3, CancellationToken cancellationToken = default)
    {
        var info = _model.Info;
        lengths ??= [.. new[] { 8, 16, 32, 64, 96, 128, 160, 192, 224, 256, 384, 512, 768, 1024 }.Where(l => l < info.ContextLength)];
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        if (lengths.Distinct().Count() < 3) throw new ArgumentException("The cost fits need at least three different lengths.", nameof(lengths));
        foreach (var l in lengths)
        {
            if (l < 1 || l >= info.ContextLength) throw new ArgumentOutOfRangeException(nameof(lengths), l, $"Lengths must be between 1 and the context length {info.ContextLength} − 1.");
        }

        var element = _model.Runtime.Graph.Signature.KvType == TensorElementType.Float16 ? 2L : 4L;
        var scoresPerKey = (long)info.LayerCount * info.AttentionHeadCount * element;
        return Task.Run(() =>
        {
            var ids = FillerTokens(lengths.Max() + 1);
            var points = new List<CostPoint>();
            foreach (var length in lengths)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var prefix = ids[..length];
                using var session = _model.CreateSession(length + 1);
                session.Append(prefix, cancellationToken);
                double cached = double.MaxValue, recompute = double.MaxValue;
                for (var r = 0; r < repeats; r++)
                {
                    var clock = Stopwatch.StartNew();
                    session.Append(ids[length]);
                    cached = Math.Min(cached, clock.Elapsed.TotalMilliseconds);
                    session.Rewind(length);
                }

                for (var r = 0; r < repeats; r++)
                {
                    using var fresh = _model.CreateSession(length + 1);
                    var clock = Stopwatch.StartNew();
                    fresh.Append(ids[..(length + 1)], cancellationToken);
                    recompute = Math.Min(recompute, clock.Elapsed.TotalMilliseconds);
                }

                var keys = length + 1L;
                points.Add(new CostPoint(length, cached, recompute, keys * info.KvCacheBytesPerToken, keys * scoresPerKey, keys * keys * scoresPerKey));
            }

            double[] xs = [.. points.Select(p => (double)p.Length)];
            return new CostExplanation(info.KvCacheBytesPerToken, points, LeastSquares(xs, [.. points.Select(p => p.CachedStepMs)], 1),
                LeastSquares(xs, [.. points.Select(p => p.RecomputeStepMs)], 2));
        }, cancellationToken);
    }

    /// <summary>
    /// The embedding and every branch tensor over one run, [n, hidden] each, as the graph computes them (in a second
    /// session with those tensors as outputs, disposed after the run).
    /// </summary>
    internal (float[] Embedding, float[][] Attention, float[][] Mlp, int N, int Hidden) ResidualTensors(int[] ids, CancellationToken cancellationToken = default)
    {
        var stream = Residual();
        var layers = stream.Adds.Count / 2;
        var outputs = new List<string> { stream.Embedding };
        outputs.AddRange(stream.Adds.Select(a => a.Branch));
        var file = _file.Value;
        var tensors = RunEdited(file.Edited(new Dictionary<string, string>(), [], [], outputs, ComputeType()), ids, outputs, cancellationToken);
        var hidden = tensors[0].Length / ids.Length;
        if (hidden * ids.Length != tensors[0].Length || tensors.Any(t => t.Length != tensors[0].Length))
        {
            throw new ModelFormatException($"The residual-stream tensors have {string.Join(", ", tensors.Select(t => t.Length))} elements; expected {ids.Length} positions × the hidden size each.", _model.Info.GraphPath);
        }

        return (tensors[0], [.. Enumerable.Range(0, layers).Select(l => tensors[1 + (2 * l)])], [.. Enumerable.Range(0, layers).Select(l => tensors[2 + (2 * l)])], ids.Length, hidden);
    }

    /// <summary>The final residual stream (the last residual addition's output, [n, hidden]) read from the graph.</summary>
    internal float[] FinalResidual(int[] ids, CancellationToken cancellationToken = default)
    {
        string[] outputs = [Residual().Adds[^1].Sum];
        return RunEdited(_file.Value.Edited(new Dictionary<string, string>(), [], [], outputs, ComputeType()), ids, outputs, cancellationToken)[0];
    }

    /// <summary>
    /// The last position's logits of a rewritten graph: <paramref name="layer"/> null zeroes nothing (the graph as it is,
    /// in its own session), a layer with <paramref name="head"/> null zeroes that layer's MLP, with a head that head.
    /// </summary>
    internal float[] AblatedLogits(int[] ids, int? layer, int? head, CancellationToken cancellationToken = default)
    {
        var file = _file.Value;
        var renamed = new Dictionary<string, string>();
        var nodes = new List<OnnxModelFile.NewNode>();
        var initializers = new List<OnnxModelFile.NewInitializer>();
        if (layer is { } l && head is null)
        {
            // The MLP's residual addition Sum = Residual + Branch becomes Sum = Identity(Residual): the branch is zeroed exactly.
            var add = Residual().Adds[(2 * l) + 1];
            renamed[add.Sum] = add.Sum + "/explain_unablated";
            nodes.Add(new OnnxModelFile.NewNode("Identity", [add.Residual], [add.Sum]));
        }
        else if (layer is { } al && head is { } h)
        {
            var merged = HeadsBeforeProjection(al);
            var heads = _model.Info.AttentionHeadCount;
            var size = _model.Info.HeadSize;
            var half = ComputeType() == 10;
            var mask = new byte[heads * size * (half ? 2 : 4)];
            for (var i = 0; i < heads * size; i++)
            {
                var keep = i / size != h;
                if (half) BitConverter.TryWriteBytes(mask.AsSpan(i * 2), keep ? (Half)1 : (Half)0);
                else BitConverter.TryWriteBytes(mask.AsSpan(i * 4), keep ? 1f : 0f);
            }

            // The heads' outputs merged head by head, [batch, positions, heads × head size], times a mask that is 0 on one head's slice.
            renamed[merged] = merged + "/explain_unmasked";
            initializers.Add(new OnnxModelFile.NewInitializer("explain/head_mask", [heads * size], half ? 10 : 1, mask));
            nodes.Add(new OnnxModelFile.NewNode("Mul", [merged + "/explain_unmasked", "explain/head_mask"], [merged]));
        }

        var logitsName = _model.Runtime.Graph.Signature.Logits;
        var logits = RunEdited(file.Edited(renamed, nodes, initializers, []), ids, [logitsName], cancellationToken)[0];
        var vocab = _model.Info.VocabularySize;
        return logits[^vocab..];
    }

    /// <summary>
    /// Layer <paramref name="layer"/>'s heads merged before the output projection: the tensor the projection's MatMul
    /// multiplies (the attention branch is that MatMul, plus a bias in GPT-2).
    /// </summary>
    private string HeadsBeforeProjection(int layer)
    {
        var file = _file.Value;
        if (file.Nodes.FirstOrDefault(n => n.OpType is "GroupQueryAttention" or "MultiHeadAttention" or "Attention" or "PackedAttention") is { } fused)
        {
            throw new NotSupportedException($"The graph computes attention in one fused {fused.OpType} operator, so one head's output cannot be zeroed inside it; build the model with standard operators (onnxlm convert --attention standard) to zero heads.");
        }

        var branch = Residual().Adds[2 * layer].Branch;
        var producers = file.Nodes.SelectMany(n => n.Outputs.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n, StringComparer.Ordinal);
        var node = producers.GetValueOrDefault(branch);
        if (node is { OpType: "Add" })
        {
            node = node.Inputs.Where(i => !file.Initializers.ContainsKey(i)).Select(producers.GetValueOrDefault).FirstOrDefault(p => p?.OpType is "MatMul" or "MatMulNBits");
        }

        if (node is not { OpType: "MatMul" or "MatMulNBits" } || !producers.ContainsKey(node.Inputs[0]))
        {
            throw new NotSupportedException($"Layer {layer}'s attention output ('{branch}') is not a projection MatMul of the merged heads, so one head cannot be zeroed.");
        }

        return node.Inputs[0];
    }

    /// <summary>Runs <paramref name="model"/> (bytes) over <paramref name="ids"/> in a session of its own and returns the named outputs as float arrays.</summary>
    private float[][] RunEdited(byte[] model, int[] ids, IReadOnlyList<string> outputs, CancellationToken cancellationToken)
    {
        using var options = new SessionOptions();
        options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", Path.GetDirectoryName(_model.Info.GraphPath)!);
        using var session = new InferenceSession(model, options);
        using var feed = new GraphFeed(_model.Runtime.Graph);
        feed.Begin(1, ids.Length, 0);
        feed.Row(0, ids, 0);
        using var runOptions = new RunOptions();
        using var results = feed.Run(session, runOptions, null, outputs, cancellationToken);
        var arrays = new float[outputs.Count][];
        for (var i = 0; i < outputs.Count; i++)
        {
            var shape = results[i].GetTensorTypeAndShape();
            arrays[i] = new float[shape.ElementCount];
            GraphRun.CopyAsFloat(results[i], shape.ElementDataType, 0, arrays[i].Length, arrays[i]);
        }

        return arrays;
    }

    /// <summary>The ONNX element type the graph computes in (its KV cache's): 10 for float16, else 1 (float).</summary>
    private int ComputeType() => _model.Runtime.Graph.Signature.KvType == TensorElementType.Float16 ? 10 : 1;

    /// <summary>
    /// Finds the residual stream: from the logits back to the first addition whose one input is an ancestor of the other
    /// (the stream plus a block computed from it), then back along the stream input, addition by addition, to the embedding.
    /// </summary>
    private ResidualStream Residual()
    {
        lock (_lock)
        {
            if (_residual is not null) return _residual;
            var file = _file.Value;
            if (file.Nodes.FirstOrDefault(n => n.OpType is "SkipLayerNormalization" or "SkipSimplifiedLayerNormalization" or "EmbedLayerNormalization") is { } fused)
            {
                throw new NotSupportedException($"The graph fuses the residual additions into {fused.OpType} operators, which add the attention and MLP outputs to the stream inside one kernel; those outputs cannot be read or zeroed apart. Build the model with standard operators (onnxlm convert --attention standard) to see block contributions.");
            }

            var producers = new Dictionary<string, OnnxModelFile.Node>(StringComparer.Ordinal);
            foreach (var node in file.Nodes)
            {
                foreach (var output in node.Outputs) producers[output] = node;
            }

            bool IsAncestor(string ancestor, string of)
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                var stack = new Stack<string>([of]);
                while (stack.TryPop(out var tensor))
                {
                    if (tensor == ancestor) return true;
                    if (!seen.Add(tensor) || !producers.TryGetValue(tensor, out var p)) continue;
                    foreach (var input in p.Inputs) stack.Push(input);
                }

                return false;
            }

            ResidualAdd? AsResidual(string tensor)
            {
                if (!producers.TryGetValue(tensor, out var node) || node.OpType != "Add" || node.Inputs.Count != 2 || node.Inputs[0] == node.Inputs[1]) return null;
                var (a, b) = (node.Inputs[0], node.Inputs[1]);
                return IsAncestor(a, b) ? new ResidualAdd(a, b, tensor) : IsAncestor(b, a) ? new ResidualAdd(b, a, tensor) : null;
            }

            var logits = _model.Runtime.Graph.Signature.Logits;
            var queue = new Queue<string>([logits]);
            var visited = new HashSet<string>(StringComparer.Ordinal);
            ResidualAdd? last = null;
            while (last is null && queue.TryDequeue(out var tensor))
            {
                if (!visited.Add(tensor)) continue;
                last = AsResidual(tensor);
                if (last is null && producers.TryGetValue(tensor, out var p))
                {
                    foreach (var input in p.Inputs) queue.Enqueue(input);
                }
            }

            var adds = new List<ResidualAdd>();
            for (var add = last; add is not null; add = AsResidual(add.Residual)) adds.Add(add);
            adds.Reverse();
            var layers = _model.Info.LayerCount;
            if (adds.Count != 2 * layers)
            {
                throw new NotSupportedException($"Found {adds.Count} residual additions before the logits; a graph with {layers} layers has {2 * layers} (attention, then MLP, per layer), so the blocks cannot be told apart.");
            }

            return _residual = new ResidualStream(adds[0].Residual, adds);
        }
    }

    /// <summary>The ids of one sequence the per-position views accept: 1 to 512 tokens, within the context, each in the vocabulary.</summary>
    private int[] CheckIds(IReadOnlyList<int> tokenIds, string paramName)
    {
        ArgumentNullException.ThrowIfNull(tokenIds, paramName);
        var ids = tokenIds.ToArray();
        if (ids.Length == 0 || ids.Length >= _model.Info.ContextLength || ids.Length > 512)
        {
            throw new ArgumentException($"The sequence has {ids.Length} tokens; these views take 1 to {Math.Min(512, _model.Info.ContextLength - 1)}.", paramName);
        }

        GraphRun.CheckTokenIds(ids, _model.Info.VocabularySize, paramName);
        return ids;
    }

    private List<string> Labels(int[] ids) =>
        [.. ids.Select(id => _model.HasTokenizer ? TokenText(_model.Tokenizer, id) : id.ToString(System.Globalization.CultureInfo.InvariantCulture))];

    private int[] FillerTokens(int count)
    {
        int[] seedIds = _model.HasTokenizer ? _model.Tokenizer.Encode("In the beginning God created the heaven and the earth. ", addSpecialTokens: false) : [];
        if (seedIds.Length == 0) seedIds = [.. Enumerable.Range(0, 16).Select(i => (i * 7) % _model.Info.VocabularySize)];
        var ids = new List<int>();
        while (ids.Count < count) ids.AddRange(seedIds);
        return [.. ids.Take(count)];
    }

    private static double[] Softmax(ReadOnlySpan<float> logits)
    {
        var p = new double[logits.Length];
        var max = float.NegativeInfinity;
        foreach (var x in logits) max = Math.Max(max, x);
        double sum = 0;
        for (var i = 0; i < p.Length; i++) sum += p[i] = Math.Exp(logits[i] - max);
        for (var i = 0; i < p.Length; i++) p[i] /= sum;
        return p;
    }

    private List<TokenProbability> Top(double[] p, int count) =>
        [.. Enumerable.Range(0, p.Length).OrderByDescending(i => p[i]).ThenBy(i => i).Take(count).Select(i => new TokenProbability(i, TokenText(_model.Tokenizer, i), p[i]))];

    /// <summary>Fills <paramref name="v"/> with independent standard normal values (Box–Muller).</summary>
    private static void Gaussian(Random random, double[] v)
    {
        for (var i = 0; i < v.Length; i++)
        {
            var u = 1 - random.NextDouble();
            v[i] = Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * random.NextDouble());
        }
    }

    private static double Cosine(double[] a, double[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }

        return dot / Math.Sqrt(na * nb);
    }

    /// <summary>Greedy random search: keeps each Gaussian direction whose |cosine| with every kept one is below epsilon, until 500 in a row fail or the limit.</summary>
    internal static int NearlyOrthogonal(int dimensions, double epsilon, int limit, Random random)
    {
        var kept = new List<double[]>();
        for (var failures = 0; failures < 500 && kept.Count < limit;)
        {
            var v = new double[dimensions];
            Gaussian(random, v);
            var norm = Math.Sqrt(v.Sum(x => x * x));
            for (var i = 0; i < v.Length; i++) v[i] /= norm;
            var fits = true;
            foreach (var k in kept)
            {
                double dot = 0;
                for (var i = 0; i < dimensions; i++) dot += k[i] * v[i];
                if (Math.Abs(dot) >= epsilon)
                {
                    fits = false;
                    break;
                }
            }

            if (fits)
            {
                kept.Add(v);
                failures = 0;
            }
            else
            {
                failures++;
            }
        }

        return kept.Count;
    }

    private static CosineSummary Summarize(double[] values, int bins, double range)
    {
        var mean = values.Average();
        var sd = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
        var histogram = new int[bins];
        foreach (var v in values) histogram[Math.Clamp((int)((v + range) / (2 * range) * bins), 0, bins - 1)]++;
        return new CosineSummary(values.Length, mean, sd, values.Average(Math.Abs), histogram, -range, range);
    }

    /// <summary>Least-squares polynomial coefficients [a, b, ...] of y ≈ a + b·x + ... of the given degree (normal equations).</summary>
    internal static double[] LeastSquares(double[] xs, double[] ys, int degree)
    {
        var k = degree + 1;
        var m = new double[k, k + 1];
        for (var i = 0; i < xs.Length; i++)
        {
            for (var r = 0; r < k; r++)
            {
                for (var c = 0; c < k; c++) m[r, c] += Math.Pow(xs[i], r + c);
                m[r, k] += Math.Pow(xs[i], r) * ys[i];
            }
        }

        for (var col = 0; col < k; col++)
        {
            var pivot = Enumerable.Range(col, k - col).MaxBy(r => Math.Abs(m[r, col]));
            for (var c = 0; c <= k; c++) (m[col, c], m[pivot, c]) = (m[pivot, c], m[col, c]);
            for (var r = 0; r < k; r++)
            {
                if (r == col || m[col, col] == 0) continue;
                var f = m[r, col] / m[col, col];
                for (var c = col; c <= k; c++) m[r, c] -= f * m[col, c];
            }
        }

        return [.. Enumerable.Range(0, k).Select(r => m[r, r] == 0 ? 0 : m[r, k] / m[r, r])];
    }
}
