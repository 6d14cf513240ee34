namespace OnnxLM.Explain;

/// <summary>
/// Finds, by the graph's structure rather than its node names, the tensors the layer views read: the residual stream
/// after each decoder layer (the chain of two-activation Adds that feeds the final norm), the final norm and the
/// unembedding (to apply them in C#), and per attention layer the q·kᵀ MatMul, the softmax input and its output.
/// </summary>
internal sealed class LayerGraph
{
    private static readonly string[] FusedNorms = ["SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "EmbedLayerNormalization"];
    private static readonly string[] FusedAttention = ["GroupQueryAttention", "MultiHeadAttention", "Attention", "PackedAttention"];

    private readonly OnnxModelFile _file;
    private readonly Dictionary<string, OnnxModelFile.Node> _producer = new(StringComparer.Ordinal);

    public LayerGraph(OnnxModelFile file, string logitsName, int layerCount)
    {
        _file = file;
        foreach (var node in file.Nodes)
        {
            foreach (var output in node.Outputs) _producer[output] = node;
        }

        (States, Norm, Unembedding, UnembeddingBias, Vocabulary, Hidden, LensProblem) = FindLens(logitsName, layerCount);
        (Attention, AttentionProblem) = FindAttention();
    }

    /// <summary>The final norm: its kind, weight, bias and epsilon (kind None: the graph has none before the unembedding).</summary>
    public sealed record FinalNorm(string Kind, float[]? Weight, float[]? Bias, float Epsilon);

    /// <summary>One attention layer's tensors: q·kᵀ (before scaling), the softmax input, the softmax output, q and kᵀ, and the scale applied between.</summary>
    public sealed record AttentionTaps(string Raw, string Scores, string Weights, string Query, string KeyTransposed, double Scale);

    /// <summary>Residual-stream tensors: [0] the embeddings, [l] the hidden state after layer l; empty when <see cref="LensProblem"/> says why.</summary>
    public IReadOnlyList<string> States { get; }

    public FinalNorm? Norm { get; }

    /// <summary>The unembedding matrix, vocabulary-major [V, H].</summary>
    public float[]? Unembedding { get; }

    public float[]? UnembeddingBias { get; }

    public int Vocabulary { get; }

    public int Hidden { get; }

    /// <summary>Why the logit lens cannot run on this graph; null when it can.</summary>
    public string? LensProblem { get; }

    /// <summary>One entry per Softmax node, in graph order (layer order); empty when <see cref="AttentionProblem"/> says why.</summary>
    public IReadOnlyList<AttentionTaps> Attention { get; }

    /// <summary>Why the attention scores cannot be read from this graph; null when they can.</summary>
    public string? AttentionProblem { get; }

    private OnnxModelFile.Node? Producer(string tensor) => _producer.GetValueOrDefault(tensor);

    private bool IsConstant(string tensor)
    {
        for (var hops = 0; hops < 6; hops++)
        {
            if (tensor.Length == 0 || _file.Initializers.ContainsKey(tensor)) return true;
            var node = Producer(tensor);
            if (node is null) return false; // a graph input
            if (node.OpType is "Constant" or "ConstantOfShape") return true;
            if (node.OpType is not ("Cast" or "Identity" or "Transpose" or "Reshape" or "Unsqueeze" or "Squeeze" or "DequantizeLinear")) return false;
            tensor = node.Inputs[0];
        }

        return false;
    }

    /// <summary>An Add of two activations: a residual connection (or, first in the chain, GPT-2's token + position embeddings).</summary>
    private bool IsResidualAdd(OnnxModelFile.Node? node) =>
        node is { OpType: "Add", Inputs.Count: 2 } && !IsConstant(node.Inputs[0]) && !IsConstant(node.Inputs[1]);

    /// <summary>A constant's values through Cast/Identity: an initializer or a Constant node; null otherwise.</summary>
    private float[]? Values(string tensor)
    {
        for (var hops = 0; hops < 4; hops++)
        {
            if (_file.Initializers.TryGetValue(tensor, out var init)) return init.DataType is 1 or 10 or 16 ? _file.ReadFloats(init) : null;
            var node = Producer(tensor);
            if (node is null) return null;
            if (node.OpType == "Constant") return node.ConstantValues;
            if (node.OpType is not ("Cast" or "Identity")) return null;
            tensor = node.Inputs[0];
        }

        return null;
    }

    private (IReadOnlyList<string>, FinalNorm?, float[]?, float[]?, int, int, string?) FindLens(string logitsName, int layerCount)
    {
        static (IReadOnlyList<string>, FinalNorm?, float[]?, float[]?, int, int, string?) Fail(string why) => ([], null, null, null, 0, 0, why);
        if (_file.Nodes.FirstOrDefault(n => FusedNorms.Contains(n.OpType)) is { } fused)
        {
            return Fail($"The graph adds the residual stream inside fused {fused.OpType} operators, so the hidden state after each layer is not a tensor it computes; " +
                "build the model with standard operators (onnxlm convert --attention standard, from the checkpoint) to see the logit lens.");
        }

        // logits = [Cast] ([Add bias]) MatMul(normed, W or Transpose(W)).
        var tensor = logitsName;
        while (Producer(tensor) is { OpType: "Cast" or "Identity" } cast) tensor = cast.Inputs[0];
        float[]? headBias = null;
        if (Producer(tensor) is { OpType: "Add", Inputs.Count: 2 } add && IsConstant(add.Inputs[1]))
        {
            headBias = Values(add.Inputs[1]);
            tensor = add.Inputs[0];
        }

        var head = Producer(tensor);
        if (head is not { OpType: "MatMul" })
        {
            return Fail($"The logits come from a {head?.OpType ?? "graph input"} node, not a MatMul with a float matrix, so the unembedding cannot be read from the graph.");
        }

        var (matrix, vocab, hidden) = Matrix(head.Inputs[1]);
        if (matrix is null) return Fail("The unembedding (the logits' MatMul weight) is not a plain float matrix (quantized or computed), so it cannot be applied to other layers.");

        var normed = head.Inputs[0];
        var (norm, residual, problem) = FindNorm(normed, hidden);
        if (problem is not null) return Fail(problem);

        var chain = new List<string>();
        string embedding;
        for (var current = residual!; ;)
        {
            var node = Producer(current);
            if (!IsResidualAdd(node))
            {
                embedding = current;
                break;
            }

            chain.Insert(0, current);
            current = node!.Inputs.FirstOrDefault(i => IsResidualAdd(Producer(i)))
                ?? node.Inputs.FirstOrDefault(i => Producer(Through(i)) is { OpType: "Gather" })
                ?? node.Inputs[0];
        }

        // GPT-2: the first Add sums token and position embeddings (both Gathers); it is the embedding, not a layer.
        if (chain.Count == (2 * layerCount) + 1 && Producer(chain[0]) is { } first && first.Inputs.All(i => Producer(Through(i)) is { OpType: "Gather" }))
        {
            embedding = chain[0];
            chain.RemoveAt(0);
        }

        IReadOnlyList<string> layers = chain.Count == 2 * layerCount ? [.. chain.Where((_, i) => i % 2 == 1)]
            : chain.Count == layerCount ? chain
            : [];
        if (layers.Count == 0)
        {
            return Fail($"Found {chain.Count} residual additions feeding the final norm for {layerCount} layers (expected {2 * layerCount}, or {layerCount} without MLPs), " +
                "so the hidden state after each layer cannot be told apart.");
        }

        return ([embedding, .. layers], norm, matrix, headBias, vocab, hidden, null);
    }

    private string Through(string tensor)
    {
        while (Producer(tensor) is { OpType: "Cast" or "Identity" } node) tensor = node.Inputs[0];
        return tensor;
    }

    /// <summary>The unembedding as [V, H] from MatMul's B: an initializer [H, V], or a Transpose of one [V, H] (tied embeddings), through casts.</summary>
    private (float[]? Matrix, int Vocabulary, int Hidden) Matrix(string tensor)
    {
        var transposed = false;
        for (var hops = 0; hops < 6; hops++)
        {
            if (_file.Initializers.TryGetValue(tensor, out var init))
            {
                if (init.Dims is not [var rows, var cols] || init.DataType is not (1 or 10 or 16)) return (null, 0, 0);
                var values = _file.ReadFloats(init);
                if (transposed) return (values, (int)rows, (int)cols); // already [V, H]
                var (h, v) = ((int)rows, (int)cols);
                var result = new float[values.Length];
                for (var i = 0; i < h; i++)
                {
                    for (var j = 0; j < v; j++) result[(j * h) + i] = values[(i * v) + j];
                }

                return (result, v, h);
            }

            var node = Producer(tensor);
            if (node is null) return (null, 0, 0);
            if (node.OpType == "Transpose") transposed = !transposed;
            else if (node.OpType is not ("Cast" or "Identity")) return (null, 0, 0);
            tensor = node.Inputs[0];
        }

        return (null, 0, 0);
    }

    /// <summary>The final norm between the last residual Add and the unembedding: fused (Simplified)LayerNormalization, the decomposed form, or none.</summary>
    private (FinalNorm? Norm, string? Residual, string? Problem) FindNorm(string normed, int hidden)
    {
        var node = Producer(normed);
        if (IsResidualAdd(node)) return (new FinalNorm("None", null, null, 0), normed, null);
        if (node is { OpType: "LayerNormalization" or "SimplifiedLayerNormalization" })
        {
            var kind = node.OpType == "LayerNormalization" ? "LayerNorm" : "RMSNorm";
            var bias = node.Inputs.Count > 2 && node.Inputs[2].Length > 0 ? Values(node.Inputs[2]) : null;
            return IsResidualAdd(Producer(node.Inputs[0]))
                ? (new FinalNorm(kind, Values(node.Inputs[1]), bias, node.FloatAttributes.GetValueOrDefault("epsilon", 1e-5f)), node.Inputs[0], null)
                : (null, null, $"The final {node.OpType} does not read a residual Add, so the residual stream cannot be found.");
        }

        float[]? normBias = null;
        if (node is { OpType: "Add", Inputs.Count: 2 } biasAdd && biasAdd.Inputs.FirstOrDefault(IsConstant) is { } b)
        {
            normBias = Values(b);
            node = Producer(biasAdd.Inputs.First(i => i != b));
        }

        if (node is not { OpType: "Mul", Inputs.Count: 2 } scale || scale.Inputs.FirstOrDefault(i => Values(i)?.Length == hidden) is not { } w)
        {
            return (null, null, $"The unembedding reads a {node?.OpType ?? "graph input"} node, not a norm this reader recognises (LayerNormalization, SimplifiedLayerNormalization, or their decomposed forms).");
        }

        var weight = Values(w)!;
        string? residual = null;
        var layerNorm = false;
        float epsilon = 0;
        var queue = new Queue<string>([scale.Inputs.First(i => i != w)]);
        for (var visited = 0; queue.Count > 0 && visited < 24; visited++)
        {
            var tensor = queue.Dequeue();
            var producer = Producer(tensor);
            if (producer is null) continue;
            if (IsResidualAdd(producer))
            {
                if (residual is not null && residual != tensor) return (null, null, "The final norm reads two residual tensors; the residual stream is ambiguous.");
                residual = tensor;
                continue;
            }

            if (producer.OpType == "Sub") layerNorm = true;
            if (producer.OpType == "Add" && producer.Inputs.FirstOrDefault(IsConstant) is { } c && Values(c) is [var eps]) epsilon = eps;
            foreach (var input in producer.Inputs.Where(i => !IsConstant(i))) queue.Enqueue(input);
        }

        return residual is null
            ? (null, null, "No residual Add was found behind the final norm.")
            : (new FinalNorm(layerNorm ? "LayerNorm" : "RMSNorm", weight, normBias, epsilon), residual, null);
    }

    private (IReadOnlyList<AttentionTaps>, string?) FindAttention()
    {
        if (_file.Nodes.FirstOrDefault(n => FusedAttention.Contains(n.OpType)) is { } fused)
        {
            return ([], $"The graph computes attention in one fused {fused.OpType} operator, which does not expose its scores or probabilities; " +
                "build the model with standard operators (onnxlm convert --attention standard) to see heads and query·key scores.");
        }

        var taps = new List<AttentionTaps>();
        foreach (var softmax in _file.Nodes.Where(n => n.OpType == "Softmax"))
        {
            var path = new List<OnnxModelFile.Node>();
            var matmul = FindScores(softmax.Inputs[0], path, 0);
            if (matmul is null) return ([], $"The input of Softmax '{softmax.Name}' does not come from a q·kᵀ MatMul within a few scale/mask steps, so raw scores cannot be read.");
            double scale = 1;
            foreach (var step in path)
            {
                if (step.OpType is not ("Mul" or "Div")) continue;
                var constant = step.Inputs.Skip(1).Concat(step.Inputs.Take(1)).FirstOrDefault(IsConstant);
                if (constant is not null && Values(constant) is [var c]) scale = step.OpType == "Mul" ? scale * c : scale / c;
            }

            taps.Add(new AttentionTaps(matmul.Outputs[0], softmax.Inputs[0], softmax.Outputs[0], matmul.Inputs[0], matmul.Inputs[1], scale));
        }

        return taps.Count == 0 ? ([], "The graph has no Softmax node, so its attention cannot be read.") : (taps, null);
    }

    /// <summary>Depth-first from the softmax input back through scale and mask steps to the MatMul of two activations (q·kᵀ); <paramref name="path"/> gets the steps between.</summary>
    private OnnxModelFile.Node? FindScores(string tensor, List<OnnxModelFile.Node> path, int depth)
    {
        var node = Producer(tensor);
        if (node is null || depth > 5) return null;
        if (node.OpType == "MatMul" && !IsConstant(node.Inputs[0]) && !IsConstant(node.Inputs[1])) return node;
        if (node.OpType is not ("Add" or "Where" or "Mul" or "Div" or "Cast" or "Sub")) return null;
        path.Add(node);
        var order = node.Inputs.Where(i => !IsConstant(i)).OrderBy(i => Producer(i)?.OpType is "MatMul" or "Mul" or "Div" ? 0 : 1);
        foreach (var input in order)
        {
            if (FindScores(input, path, depth + 1) is { } found) return found;
        }

        path.RemoveAt(path.Count - 1);
        return null;
    }
}
