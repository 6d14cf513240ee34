using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// The decoder graph's real inputs and outputs, matched to what OnnxLM feeds: token ids, optional
/// attention mask and position ids, optional <c>use_cache_branch</c> (Optimum merged decoders), and one
/// past/present pair per layer in either cache layout. Built from ONNX Runtime's metadata, checked
/// against the config, and failing with the full list of found vs. expected names otherwise.
/// </summary>
internal sealed class GraphSignature
{
    public required string InputIds { get; init; }
    public required TensorElementType IdType { get; init; }
    public string? AttentionMask { get; init; }
    public TensorElementType MaskType { get; init; }
    public string? PositionIds { get; init; }
    public TensorElementType PositionType { get; init; }
    public string? UseCacheBranch { get; init; }

    /// <summary>
    /// <c>num_logits_to_keep</c> (transformers before 4.49) or <c>logits_to_keep</c>: logits are computed for the last this
    /// many positions only, and 0 means all of them (transformers slices <c>hidden_states[:, -k:]</c>, and <c>-0</c> is 0).
    /// A scalar (rank 0) or a one-element tensor (<see cref="LogitsToKeepRank"/>).
    /// </summary>
    public string? LogitsToKeep { get; init; }
    public TensorElementType LogitsToKeepType { get; init; }
    public int LogitsToKeepRank { get; init; }

    /// <summary><c>cache_position</c>: the new tokens' indices in the cache, [sequence] (shared by the rows, as in transformers).</summary>
    public string? CachePosition { get; init; }
    public TensorElementType CachePositionType { get; init; }

    /// <summary><c>token_type_ids</c> [batch, sequence] (Gemma-style exports): all zeros, text.</summary>
    public string? TokenTypeIds { get; init; }
    public TensorElementType TokenTypeType { get; init; }

    /// <summary>The graph inputs above that are present, by name, in that order (reported as <see cref="ModelInfo.ExtraInputs"/>).</summary>
    public IReadOnlyList<string> ExtraInputs => new[] { LogitsToKeep, CachePosition, TokenTypeIds }.OfType<string>().ToArray();

    public required string Logits { get; init; }
    public required TensorElementType LogitsType { get; init; }
    public required KvCacheLayout Layout { get; init; }
    public required TensorElementType KvType { get; init; }

    /// <summary>Past input names in binding order: per layer key then value (separate) or one combined tensor.</summary>
    public required string[] PastNames { get; init; }

    /// <summary>Present output names, aligned with <see cref="PastNames"/>.</summary>
    public required string[] PresentNames { get; init; }

    public required int LayerCount { get; init; }
    public required int KeyValueHeadCount { get; init; }
    public required int HeadSize { get; init; }
    public int? VocabularySize { get; init; }

    /// <summary>
    /// Writes the shape of one cache tensor holding <paramref name="positions"/> positions of <paramref name="batch"/> rows
    /// into <paramref name="shape"/>: <c>[batch, kv_heads, positions, head]</c>, or <c>[2, batch, …]</c> combined. Returns the rank.
    /// </summary>
    public int CacheShape(Span<long> shape, int batch, int positions)
    {
        var offset = 0;
        if (Layout == KvCacheLayout.Combined) shape[offset++] = 2;
        shape[offset] = batch;
        shape[offset + 1] = KeyValueHeadCount;
        shape[offset + 2] = positions;
        shape[offset + 3] = HeadSize;
        return offset + 4;
    }

    /// <summary>Bytes of one element of a cache tensor (float32 or float16).</summary>
    public int CacheElementSize => KvType == TensorElementType.Float ? 4 : 2;

    /// <summary>Bytes of one cache tensor holding <paramref name="positions"/> positions of <paramref name="batch"/> rows.</summary>
    public long CacheBytes(int batch, int positions) =>
        (Layout == KvCacheLayout.Combined ? 2L : 1L) * batch * KeyValueHeadCount * positions * HeadSize * CacheElementSize;

    /// <summary>
    /// Copies <paramref name="count"/> cache columns of row <paramref name="srcRow"/> from column <paramref name="srcColumn"/> of
    /// <paramref name="from"/> ([outer][batch][kv_heads][width][head], outer 2 for the combined layout) to row <paramref name="dstRow"/>
    /// from column <paramref name="dstColumn"/> of <paramref name="to"/>.
    /// </summary>
    public void CopyCachePositions(ReadOnlySpan<byte> from, int srcBatch, int srcWidth, int srcRow, int srcColumn,
        Span<byte> to, int dstBatch, int dstWidth, int dstRow, int dstColumn, int count)
    {
        if (count == 0)
        {
            return;
        }

        var row = HeadSize * CacheElementSize;
        var heads = KeyValueHeadCount;
        var outer = Layout == KvCacheLayout.Combined ? 2 : 1;
        for (var o = 0; o < outer; o++)
        {
            for (var h = 0; h < heads; h++)
            {
                var s = (((long)o * srcBatch + srcRow) * heads + h) * srcWidth + srcColumn;
                var d = (((long)o * dstBatch + dstRow) * heads + h) * dstWidth + dstColumn;
                from.Slice((int)(s * row), count * row).CopyTo(to.Slice((int)(d * row), count * row));
            }
        }
    }

    /// <summary>The shape of one cache tensor (see <see cref="CacheShape(Span{long}, int, int)"/>) as a new array.</summary>
    public long[] CacheShape(int batch, int positions)
    {
        var shape = new long[Layout == KvCacheLayout.Combined ? 5 : 4];
        CacheShape(shape, batch, positions);
        return shape;
    }

    /// <summary>The inputs that ask a graph for the logits of only the last positions, in the order looked for (transformers' names).</summary>
    internal static readonly string[] LogitsCountNames = ["num_logits_to_keep", "logits_to_keep"];

    public static GraphSignature Inspect(
        IReadOnlyDictionary<string, NodeMetadata> inputs, IReadOnlyDictionary<string, NodeMetadata> outputs, ModelConfig config)
    {
        string DescribeGraph() =>
            $"Graph inputs: {DescribeNodes(inputs)}. Graph outputs: {DescribeNodes(outputs)}.";

        ModelFormatException Fail(string what) => new($"{config.GraphFile}: {what} {DescribeGraph()}", config.GraphFile);

        string Name(string key, string fallback) => config.Names.TryGetValue(key, out var n) ? n : fallback;

        var inputIds = Name("input_ids", "input_ids");
        if (!inputs.TryGetValue(inputIds, out var idsMeta))
        {
            throw Fail($"the token input '{inputIds}' was not found (expected an int64 or int32 tensor [batch, sequence]).");
        }

        var idType = RequireInteger(idsMeta, inputIds, Fail);

        string? Optional(string key, string fallback) => inputs.ContainsKey(Name(key, fallback)) ? Name(key, fallback) : null;
        var mask = Optional("attention_mask", "attention_mask");
        var positions = Optional("position_ids", "position_ids");
        var useCache = inputs.ContainsKey("use_cache_branch") ? "use_cache_branch" : null;
        var logitsToKeep = LogitsCountNames.FirstOrDefault(inputs.ContainsKey);
        var cachePosition = inputs.ContainsKey("cache_position") ? "cache_position" : null;
        var tokenTypes = inputs.ContainsKey("token_type_ids") ? "token_type_ids" : null;
        if (logitsToKeep is not null && inputs[logitsToKeep].Dimensions.Length > 1)
        {
            throw Fail($"input '{logitsToKeep}' is {Describe(inputs[logitsToKeep])}; expected an integer scalar (how many last positions get logits).");
        }

        if (cachePosition is not null && inputs[cachePosition].Dimensions.Length != 1)
        {
            throw Fail($"input '{cachePosition}' is {Describe(inputs[cachePosition])}; expected integers [sequence].");
        }

        if (tokenTypes is not null && inputs[tokenTypes].Dimensions.Length != 2)
        {
            throw Fail($"input '{tokenTypes}' is {Describe(inputs[tokenTypes])}; expected integers [batch, sequence].");
        }

        var logits = Name("logits", "logits");
        if (!outputs.TryGetValue(logits, out var logitsMeta))
        {
            throw Fail($"the output '{logits}' was not found (expected float32 or float16 logits [batch, sequence, vocab]).");
        }

        if (logitsMeta.ElementDataType is not (TensorElementType.Float or TensorElementType.Float16) || logitsMeta.Dimensions.Length != 3)
        {
            throw Fail($"'{logits}' is {Describe(logitsMeta)}; expected float32 or float16 [batch, sequence, vocab].");
        }

        var (layout, pastNames, presentNames) = FindCache(inputs, outputs, config, Fail);
        var first = inputs[pastNames[0]];
        var kvType = first.ElementDataType;
        if (kvType is not (TensorElementType.Float or TensorElementType.Float16))
        {
            throw Fail($"past tensor '{pastNames[0]}' has element type {kvType}; expected float32 or float16.");
        }

        var expectedRank = layout == KvCacheLayout.Combined ? 5 : 4;
        foreach (var name in pastNames)
        {
            var meta = inputs[name];
            if (meta.Dimensions.Length != expectedRank || meta.ElementDataType != kvType)
            {
                throw Fail($"past tensor '{name}' is {Describe(meta)}; expected {kvType} with rank {expectedRank} " +
                           (layout == KvCacheLayout.Combined ? "[2, batch, kv_heads, past_seq, head_dim]." : "[batch, kv_heads, past_seq, head_dim]."));
            }
        }

        var offset = layout == KvCacheLayout.Combined ? 1 : 0;
        var kvHeads = Resolve(first.Dimensions[offset + 1], config.KeyValueHeadCount, "number of key/value heads", pastNames[0], config, Fail);
        var headSize = Resolve(first.Dimensions[offset + 3], config.HeadSize, "head size", pastNames[0], config, Fail);
        var layers = layout == KvCacheLayout.Combined ? pastNames.Length : pastNames.Length / 2;
        if (config.LayerCount is { } stated && stated != layers)
        {
            throw Fail($"{config.ConfigFile} says {stated} layers but the graph has past tensors for {layers}.");
        }

        int? vocab = logitsMeta.Dimensions[2] > 0 ? (int)logitsMeta.Dimensions[2] : config.VocabularySize;
        if (config.VocabularySize is { } v && logitsMeta.Dimensions[2] > 0 && v != logitsMeta.Dimensions[2])
        {
            throw Fail($"{config.ConfigFile} says vocab_size {v} but '{logits}' has {logitsMeta.Dimensions[2]} columns.");
        }

        var known = new HashSet<string>(pastNames, StringComparer.Ordinal) { inputIds };
        if (mask is not null) known.Add(mask);
        if (positions is not null) known.Add(positions);
        if (useCache is not null) known.Add(useCache);
        if (logitsToKeep is not null) known.Add(logitsToKeep);
        if (cachePosition is not null) known.Add(cachePosition);
        if (tokenTypes is not null) known.Add(tokenTypes);
        var unknown = inputs.Keys.Where(k => !known.Contains(k)).ToArray();
        if (unknown.Length > 0)
        {
            throw Fail($"OnnxLM does not know how to feed the input(s) {string.Join(", ", unknown)} " +
                       "(it feeds input_ids, attention_mask, position_ids, use_cache_branch, num_logits_to_keep/logits_to_keep, cache_position, " +
                       "token_type_ids and the past key/values).");
        }

        return new GraphSignature
        {
            InputIds = inputIds,
            IdType = idType,
            AttentionMask = mask,
            MaskType = mask is null ? idType : RequireInteger(inputs[mask], mask, Fail),
            PositionIds = positions,
            PositionType = positions is null ? idType : RequireInteger(inputs[positions], positions, Fail),
            UseCacheBranch = useCache,
            LogitsToKeep = logitsToKeep,
            LogitsToKeepType = logitsToKeep is null ? idType : RequireInteger(inputs[logitsToKeep], logitsToKeep, Fail),
            LogitsToKeepRank = logitsToKeep is null ? 0 : inputs[logitsToKeep].Dimensions.Length,
            CachePosition = cachePosition,
            CachePositionType = cachePosition is null ? idType : RequireInteger(inputs[cachePosition], cachePosition, Fail),
            TokenTypeIds = tokenTypes,
            TokenTypeType = tokenTypes is null ? idType : RequireInteger(inputs[tokenTypes], tokenTypes, Fail),
            Logits = logits,
            LogitsType = logitsMeta.ElementDataType,
            Layout = layout,
            KvType = kvType,
            PastNames = pastNames,
            PresentNames = presentNames,
            LayerCount = layers,
            KeyValueHeadCount = kvHeads,
            HeadSize = headSize,
            VocabularySize = vocab,
        };
    }

    private static (KvCacheLayout, string[], string[]) FindCache(
        IReadOnlyDictionary<string, NodeMetadata> inputs, IReadOnlyDictionary<string, NodeMetadata> outputs,
        ModelConfig config, Func<string, ModelFormatException> fail)
    {
        // Templates stated by genai_config.json come first; then the names real exporters use.
        var separate = new List<(string PastKey, string PastValue, string PresentKey, string PresentValue)>();
        if (config.Names.TryGetValue("past_key_names", out var pk) && config.Names.TryGetValue("past_value_names", out var pv))
        {
            separate.Add((pk, pv, config.Names.GetValueOrDefault("present_key_names", "present.%d.key"),
                config.Names.GetValueOrDefault("present_value_names", "present.%d.value")));
        }

        separate.Add(("past_key_values.%d.key", "past_key_values.%d.value", "present.%d.key", "present.%d.value"));
        separate.Add(("past_key_values.%d.key", "past_key_values.%d.value", "present_key_values.%d.key", "present_key_values.%d.value"));

        foreach (var (pastKey, pastValue, presentKey, presentValue) in separate)
        {
            var layers = CountLayers(inputs, pastKey);
            if (layers == 0)
            {
                continue;
            }

            var past = new List<string>();
            var present = new List<string>();
            for (var i = 0; i < layers; i++)
            {
                string[] pair = [Format(pastKey, i), Format(pastValue, i)];
                string[] outPair = [Format(presentKey, i), Format(presentValue, i)];
                foreach (var name in pair.Where(n => !inputs.ContainsKey(n)))
                {
                    throw fail($"layer {i} has no past input '{name}'.");
                }

                foreach (var name in outPair.Where(n => !outputs.ContainsKey(n)))
                {
                    throw fail($"layer {i} has no present output '{name}' to pair with its past input.");
                }

                past.AddRange(pair);
                present.AddRange(outPair);
            }

            return (KvCacheLayout.SeparateKeyValue, past.ToArray(), present.ToArray());
        }

        var combinedPast = config.Names.GetValueOrDefault("past_names", "past_%d");
        var combinedPresent = config.Names.GetValueOrDefault("present_names", "present_%d");
        var combinedLayers = CountLayers(inputs, combinedPast);
        if (combinedLayers > 0)
        {
            var past = Enumerable.Range(0, combinedLayers).Select(i => Format(combinedPast, i)).ToArray();
            var present = Enumerable.Range(0, combinedLayers).Select(i => Format(combinedPresent, i)).ToArray();
            foreach (var name in present.Where(n => !outputs.ContainsKey(n)))
            {
                throw fail($"the combined cache output '{name}' is missing.");
            }

            return (KvCacheLayout.Combined, past, present);
        }

        throw fail("no past key/value inputs were found (expected 'past_key_values.%d.key'/'past_key_values.%d.value' " +
                   "with 'present.%d.key'/'present.%d.value', or combined 'past_%d' with 'present_%d'; a graph exported without a KV cache cannot be used).");
    }

    private static int CountLayers(IReadOnlyDictionary<string, NodeMetadata> inputs, string template)
    {
        var count = 0;
        while (inputs.ContainsKey(Format(template, count)))
        {
            count++;
        }

        return count;
    }

    private static string Format(string template, int layer) =>
        template.Replace("%d", layer.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    private static TensorElementType RequireInteger(NodeMetadata meta, string name, Func<string, ModelFormatException> fail) =>
        meta.ElementDataType is TensorElementType.Int64 or TensorElementType.Int32
            ? meta.ElementDataType
            : throw fail($"input '{name}' has element type {meta.ElementDataType}; expected int64 or int32.");

    private static int Resolve(long graphValue, int? configValue, string what, string tensor, ModelConfig config, Func<string, ModelFormatException> fail)
    {
        if (graphValue > 0)
        {
            if (configValue is { } c && c != graphValue)
            {
                throw fail($"{config.ConfigFile} gives {what} = {c} but tensor '{tensor}' has {graphValue}.");
            }

            return (int)graphValue;
        }

        return configValue ?? throw fail($"the {what} is neither a fixed dimension of '{tensor}' nor stated in {config.ConfigFile}.");
    }

    private static string Describe(NodeMetadata meta) =>
        $"{meta.ElementDataType} [{string.Join(", ", meta.Dimensions.Select((d, i) => d >= 0 ? d.ToString(CultureInfo.InvariantCulture) : meta.SymbolicDimensions[i] is { Length: > 0 } s ? s : "?"))}]";

    private static string DescribeNodes(IReadOnlyDictionary<string, NodeMetadata> nodes) =>
        string.Join(", ", nodes.Select(n => $"{n.Key}: {Describe(n.Value)}"));
}
