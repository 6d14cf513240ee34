using OnnxLM.ModelBuilder.Onnx;

namespace OnnxLM.ModelBuilder;

/// <summary>
/// Shared parts of the decoder graphs: the GenAI-named inputs/outputs and attention with the cache, written either with
/// standard operators (the additive causal and padding mask from attention_mask and the past length, Concat into the
/// present) or as one GroupQueryAttention node per layer (<see cref="ModelBuilderOptions.Attention"/>).
/// </summary>
internal abstract class DecoderGraphWriter
{
    protected const string Batch = "batch_size";
    protected const string Sequence = "sequence_length";
    protected const string Total = "total_sequence_length";
    protected const string Past = "past_sequence_length";

    protected DecoderGraphWriter(DecoderConfig config, IWeightSource weights, ModelBuilderOptions options)
    {
        Config = config;
        Weights = weights;
        Options = options;
    }

    protected OnnxGraph G { get; private set; } = new();
    protected DecoderConfig Config { get; }
    protected IWeightSource Weights { get; }
    protected ModelBuilderOptions Options { get; }

    /// <summary>Builds the graph; with <paramref name="spill"/>, large weights are written there as they are made.</summary>
    public OnnxGraph Build(ExternalDataWriter? spill = null)
    {
        if (spill is not null) G = new OnnxGraph(spill);
        G.Input("input_ids", OnnxGraph.Int64, Batch, Sequence);
        G.Input("attention_mask", OnnxGraph.Int64, Batch, Total);
        G.Input("position_ids", OnnxGraph.Int64, Batch, Sequence);
        if (Options.TokenTypeIdsInput) G.Input("token_type_ids", OnnxGraph.Int64, Batch, Sequence);
        if (Options.CachePositionInput) G.Input("cache_position", OnnxGraph.Int64, Sequence);
        // A scalar, as transformers exports it; 0 (all positions) when not fed, so GenAI and other runtimes run the graph as before.
        if (Options.LogitsToKeepInput) G.InputWithDefault("num_logits_to_keep", 0);
        for (var i = 0; i < Config.LayerCount; i++)
        {
            G.Input($"past_key_values.{i}.key", OnnxGraph.Float, Batch, Config.KeyValueHeadCount, Past, Config.HeadSize);
            G.Input($"past_key_values.{i}.value", OnnxGraph.Float, Batch, Config.KeyValueHeadCount, Past, Config.HeadSize);
        }

        G.Output("logits", OnnxGraph.Float, Batch, Options.LogitsToKeepInput ? "logits_length" : Sequence, Config.VocabularySize);
        for (var i = 0; i < Config.LayerCount; i++)
        {
            G.Output($"present.{i}.key", OnnxGraph.Float, Batch, Config.KeyValueHeadCount, Total, Config.HeadSize);
            G.Output($"present.{i}.value", OnnxGraph.Float, Batch, Config.KeyValueHeadCount, Total, Config.HeadSize);
        }

        if (Options.OutputAttentions)
        {
            for (var i = 0; i < Config.LayerCount; i++)
            {
                G.Output($"attentions.{i}", OnnxGraph.Float, Batch, Config.AttentionHeadCount, Sequence, Total);
            }
        }

        BuildBody();
        return G;
    }

    protected abstract void BuildBody();

    /// <summary>
    /// The token embeddings <paramref name="x"/> [B, S, hidden] plus, with <see cref="ModelBuilderOptions.TokenTypeIdsInput"/>,
    /// token type × a fixed vector (0.5 everywhere): type 0, text, adds exactly nothing.
    /// </summary>
    protected string AddTokenTypes(string x)
    {
        if (!Options.TokenTypeIdsInput) return x;
        var types = G.Op("Unsqueeze", G.Op("Cast", ["token_type_ids"], ("to", OnnxGraph.Float)), G.Ints("type_axis", 2)); // [B, S, 1]
        var vector = G.Weight("token_type_embedding", Enumerable.Repeat(0.5f, Config.HiddenSize).ToArray(), [Config.HiddenSize], asFloat16: false);
        return G.Op("Add", x, G.Op("Mul", types, vector));
    }

    /// <summary>
    /// The hidden states [B, S, hidden] of the positions that get logits: with <see cref="ModelBuilderOptions.LogitsToKeepInput"/>
    /// the last <c>num_logits_to_keep</c> of them (<c>[:, -k:]</c>; k = 0 gives <c>[:, 0:]</c>, all, as in transformers).
    /// </summary>
    protected string KeepLastPositions(string x)
    {
        if (!Options.LogitsToKeepInput) return x;
        var start = G.Op("Neg", G.Op("Unsqueeze", "num_logits_to_keep", G.Ints("keep_axis", 0)));
        return G.Op("Slice", x, start, G.Ints("keep_end", long.MaxValue), G.Ints("keep_axes", 1));
    }

    /// <summary>Whether attention is one GroupQueryAttention node per layer (q, k, v passed with heads packed, [B, S, heads*D]).</summary>
    protected bool GroupQuery => Options.Attention == AttentionOperator.GroupQuery;

    /// <summary>A float weight from the checkpoint, stored fp32 or fp16 as it is (embeddings, norms, biases).</summary>
    protected string Weight(string name, long[] shape) => Constant(name, Weights.Read(name, shape), shape);

    /// <summary>
    /// x·W for a checkpoint weight stored [outputs, inputs] (a Linear layer; <paramref name="outputsFirst"/>) or
    /// [inputs, outputs] (GPT-2's Conv1D): a MatMul with a float [inputs, outputs] weight, or, when the options quantize
    /// and <paramref name="quantize"/> allows, a MatMulNBits with the weight quantized row by row of [outputs, inputs].
    /// The result is named <paramref name="result"/> when given (a graph output).
    /// </summary>
    protected string MatMul(string x, string name, float[] weight, int inputs, int outputs, bool outputsFirst, bool quantize = true, string? result = null)
    {
        if (Options.Quantization is null || !quantize)
        {
            var stored = Constant(name, outputsFirst ? Matrix.Transpose(weight, outputs, inputs) : weight, [inputs, outputs]);
            return MatMul(x, stored, result);
        }

        return MatMulNBits(x, QuantizedWeight(name, outputsFirst ? weight : Matrix.Transpose(weight, inputs, outputs), inputs, outputs), result);
    }

    /// <summary>The initializers of one block-quantized matrix and the node attributes they go with.</summary>
    protected sealed record QuantizedInitializers(string Packed, string Scales, string? ZeroPoints, int Inputs, int Outputs, int Bits, int BlockSize);

    /// <summary>
    /// Quantizes a weight [outputs, inputs] row by row and adds its initializers as MatMulNBits reads them: the packed
    /// blocks [outputs, blocks, blob], the scales [outputs, blocks] and, when asymmetric, the packed zero points.
    /// </summary>
    protected QuantizedInitializers QuantizedWeight(string name, float[] weight, int inputs, int outputs)
    {
        var quantization = Options.Quantization ?? throw new InvalidOperationException("No quantization options.");
        var q = BlockQuantizer.Quantize(weight, outputs, inputs, quantization);
        var packed = G.Bytes(name, q.Packed, [outputs, q.BlocksPerRow, q.BlobSize]);
        var scales = G.Weight(name + ".scales", q.Scales, [outputs, q.BlocksPerRow], asFloat16: false);
        var zeroPoints = q.ZeroPoints is null ? null : G.Bytes(name + ".zero_points", q.ZeroPoints, [outputs, q.ZeroPointBytesPerRow]);
        return new QuantizedInitializers(packed, scales, zeroPoints, inputs, outputs, q.Bits, q.BlockSize);
    }

    /// <summary>x·Wᵀ as a com.microsoft MatMulNBits node over quantized initializers, named <paramref name="result"/> when given.</summary>
    protected string MatMulNBits(string x, QuantizedInitializers w, string? result = null)
    {
        string[] operands = w.ZeroPoints is null ? [x, w.Packed, w.Scales] : [x, w.Packed, w.Scales, w.ZeroPoints];
        return G.MicrosoftOp("MatMulNBits", operands, result, ("K", (long)w.Inputs), ("N", (long)w.Outputs), ("bits", (long)w.Bits),
            ("block_size", (long)w.BlockSize), ("accuracy_level", (long)Options.Quantization!.AccuracyLevel));
    }

    /// <summary>x·w for a float w, named <paramref name="result"/> when given.</summary>
    protected string MatMul(string x, string w, string? result = null)
    {
        if (result is null) return G.Op("MatMul", x, w);
        G.AddNode("MatMul", [x, w], [result]);
        return result;
    }

    /// <summary>A float constant computed here (RoPE tables), or checkpoint data; fp16 storage gets a Cast back to float.</summary>
    protected string Constant(string name, float[] values, long[] dims)
    {
        var stored = G.Weight(name, values, dims, Options.Float16Weights);
        return Options.Float16Weights ? G.Op("Cast", [stored], ("to", OnnxGraph.Float)) : stored;
    }

    /// <summary>[batch, 1, seq, total] additive mask: 0 where query i (absolute past+i) may see key j (j ≤ past+i and mask[j] = 1), float.MinValue elsewhere; built once, shared by the layers.</summary>
    private string AttentionMask() => _mask ??= BuildAttentionMask();

    private string? _mask;

    private string BuildAttentionMask()
    {
        var one = G.IntsShaped("one", [], [1]);
        var zeroI = G.IntsShaped("zero_i", [], [0]);
        var s = G.Op("Gather", [G.Op("Shape", "input_ids"), one], ("axis", 0));
        var t = G.Op("Gather", [G.Op("Shape", "attention_mask"), one], ("axis", 0));
        var past = G.Op("Sub", t, s);
        var keys = G.Op("Range", zeroI, t, one);
        // transformers builds the causal part from cache_position (the queries' indices in the cache) when it is an input.
        var queries = G.Op("Unsqueeze", Options.CachePositionInput ? "cache_position" : G.Op("Range", past, t, one), G.Ints("axis1", 1));
        var causal = G.Op("LessOrEqual", keys, queries); // [S, T]
        var padding = G.Op("Unsqueeze", G.Op("Cast", ["attention_mask"], ("to", OnnxGraph.Bool)), G.Ints("axes12", 1, 2)); // [B,1,1,T]
        var allowed = G.Op("And", causal, padding);
        // A finite minimum (not -inf) keeps a fully masked row (a padding query) a uniform softmax instead of NaN.
        return G.Op("Where", allowed, G.Scalar("mask_zero", 0f), G.Scalar("mask_min", float.MinValue));
    }

    /// <summary>[B, S, heads*D] → [B, heads, S, D].</summary>
    protected string SplitHeads(string x, int heads) =>
        G.Op("Transpose", [G.Op("Reshape", x, G.Ints("heads_shape", 0, 0, heads, Config.HeadSize))], ("perm", new long[] { 0, 2, 1, 3 }));

    /// <summary>
    /// Attention over the cache: appends k/v to the layer's past (the present outputs), repeats kv heads for
    /// grouped-query attention (query head h uses kv head h / (heads / kv_heads)), softmax(q·kᵀ/√d + mask)·v.
    /// Returns [B, S, heads*D].
    /// </summary>
    protected string Attention(int layer, string q, string k, string v)
    {
        var mask = AttentionMask();
        var presentK = $"present.{layer}.key";
        var presentV = $"present.{layer}.value";
        G.AddNode("Concat", [$"past_key_values.{layer}.key", k], [presentK], ("axis", 2));
        G.AddNode("Concat", [$"past_key_values.{layer}.value", v], [presentV], ("axis", 2));

        var keys = RepeatKv(presentK);
        var values = RepeatKv(presentV);
        var scores = G.Op("MatMul", q, G.Op("Transpose", [keys], ("perm", new long[] { 0, 1, 3, 2 })));
        scores = G.Op("Add", G.Op("Mul", scores, G.Scalar("scale", (float)(1 / Math.Sqrt(Config.HeadSize)))), mask);
        string probs;
        if (Options.OutputAttentions)
        {
            probs = $"attentions.{layer}";
            G.AddNode("Softmax", [scores], [probs], ("axis", -1));
        }
        else
        {
            probs = G.Op("Softmax", [scores], ("axis", -1));
        }

        var context = G.Op("Transpose", [G.Op("MatMul", probs, values)], ("perm", new long[] { 0, 2, 1, 3 }));
        return G.Op("Reshape", context, G.Ints("merge_shape", 0, 0, Config.AttentionHeadCount * Config.HeadSize));
    }

    /// <summary>
    /// The layer's attention as one <c>com.microsoft.GroupQueryAttention</c> node over q [B, S, heads*D] and k, v
    /// [B, S, kv_heads*D] (rotary already applied), returning [B, S, heads*D]. Its past inputs and present outputs are the
    /// graph's own <c>past_key_values.%d.*</c> and <c>present.%d.*</c> with nothing in between: that is what lets a runtime
    /// bind one buffer as both (the operator then writes the new keys after the past in place).
    /// The operator reads lengths, not a mask: seqlens_k = (ones in attention_mask) − 1 per row and
    /// total_sequence_length = the mask's width; the past length of row b is seqlens_k[b] + 1 − S, and it is causal
    /// within the new tokens, so rows must be padded on the right. With <paramref name="rotary"/> (cos and sin tables
    /// [max_positions, head_dim/2]) the operator rotates q and k itself (rotate-half, at the positions it places the new
    /// tokens: past length onwards), which saves the graph's own rotary operators (a tenth of a 1B model's small operators).
    /// </summary>
    protected string GroupQueryAttention(int layer, string q, string k, string v, (string Cos, string Sin)? rotary = null)
    {
        var (seqlensK, totalLength) = _lengths ??= GroupQueryLengths();
        string[] inputs = [q, k, v, $"past_key_values.{layer}.key", $"past_key_values.{layer}.value", seqlensK, totalLength];
        (string, object)[] attributes = [("num_heads", (long)Config.AttentionHeadCount), ("kv_num_heads", (long)Config.KeyValueHeadCount)];
        if (rotary is { } tables)
        {
            inputs = [.. inputs, tables.Cos, tables.Sin];
            attributes = [.. attributes, ("do_rotary", 1L), ("rotary_interleaved", 0L)];
        }

        string[] outputs = G.MicrosoftNode("GroupQueryAttention", inputs, [null, $"present.{layer}.key", $"present.{layer}.value"], attributes);
        return outputs[0];
    }

    private (string SeqlensK, string TotalLength)? _lengths;

    /// <summary>GroupQueryAttention's int32 length inputs, computed once from attention_mask [B, T].</summary>
    private (string SeqlensK, string TotalLength) GroupQueryLengths()
    {
        var one = G.IntsShaped("one", [], [1]);
        var ones = G.Op("ReduceSum", ["attention_mask", G.Ints("axis1", 1)], ("keepdims", 0));
        var seqlensK = G.Op("Cast", [G.Op("Sub", ones, one)], ("to", OnnxGraph.Int32));
        var width = G.Op("Gather", [G.Op("Shape", "attention_mask"), one], ("axis", 0));
        return (seqlensK, G.Op("Cast", [width], ("to", OnnxGraph.Int32)));
    }

    private string RepeatKv(string x)
    {
        var groups = Config.AttentionHeadCount / Config.KeyValueHeadCount;
        if (groups == 1)
        {
            return x;
        }

        // [B, KV, T, D] → [B, KV, 1, T, D] → expand to [B, KV, groups, T, D] → [B, KV*groups, T, D].
        var shape = G.Op("Shape", x);
        var b = G.Op("Slice", shape, G.Ints("s0", 0), G.Ints("s1", 1));
        var tLen = G.Op("Slice", shape, G.Ints("s2", 2), G.Ints("s3", 3));
        var expandShape = G.Op("Concat", [b, G.Ints("kv_groups", Config.KeyValueHeadCount, groups), tLen, G.Ints("head_dim", Config.HeadSize)], ("axis", 0));
        var expanded = G.Op("Expand", G.Op("Unsqueeze", x, G.Ints("axis2", 2)), expandShape);
        return G.Op("Reshape", expanded, G.Ints("rep_shape", 0, Config.AttentionHeadCount, -1, Config.HeadSize));
    }
}
