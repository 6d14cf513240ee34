namespace OnnxLM.ModelBuilder;

/// <summary>
/// GPT-2 decoder: token + learned position embeddings, per layer LayerNorm → fused QKV (Conv1D weights stored
/// [in, out]) → attention → projection → residual, LayerNorm → GELU (tanh approximation) MLP → residual;
/// final LayerNorm and the tied embedding as output projection.
/// </summary>
internal sealed class Gpt2GraphWriter(DecoderConfig config, IWeightSource weights, ModelBuilderOptions options)
    : DecoderGraphWriter(config, weights, options)
{
    protected override void BuildBody()
    {
        var c = Config;
        var h = c.HiddenSize;
        var wteValues = Weights.Read(Name("wte.weight"), c.VocabularySize, h);
        var wte = Constant(Name("wte.weight"), wteValues, [c.VocabularySize, h]);
        var wpe = Weight(Name("wpe.weight"), [c.MaxPositions, h]);
        var x = AddTokenTypes(G.Op("Add", G.Op("Gather", [wte, "input_ids"], ("axis", 0)), G.Op("Gather", [wpe, "position_ids"], ("axis", 0))));
        for (var i = 0; i < c.LayerCount; i++)
        {
            var p = Name($"h.{i}.");
            var y = LayerNorm(x, p + "ln_1");
            var qkv = Conv1D(y, p + "attn.c_attn", h, 3 * h);
            var parts = G.Node("Split", [qkv, G.Ints("qkv_split", h, h, h)], 3, "qkv", ("axis", -1));
            var attention = GroupQuery
                ? GroupQueryAttention(i, parts[0], parts[1], parts[2])
                : Attention(i, SplitHeads(parts[0], c.AttentionHeadCount), SplitHeads(parts[1], c.AttentionHeadCount), SplitHeads(parts[2], c.AttentionHeadCount));
            x = G.Op("Add", x, Conv1D(attention, p + "attn.c_proj", h, h));
            y = LayerNorm(x, p + "ln_2");
            x = G.Op("Add", x, Conv1D(Gelu(Conv1D(y, p + "mlp.c_fc", h, c.IntermediateSize)), p + "mlp.c_proj", c.IntermediateSize, h));
        }

        x = LayerNorm(KeepLastPositions(x), Name("ln_f"));
        if (Options.Quantization is { QuantizeOutputProjection: true })
        {
            MatMul(x, "lm_head.weight", wteValues, h, c.VocabularySize, outputsFirst: true, result: "logits");
        }
        else
        {
            MatMul(x, G.Op("Transpose", [wte], ("perm", new long[] { 1, 0 })), "logits");
        }
    }

    /// <summary>Hugging Face GPT-2 checkpoints name tensors with or without the "transformer." prefix.</summary>
    private string Name(string suffix) => Weights.Contains("transformer.wte.weight") ? "transformer." + suffix : suffix;

    private string Conv1D(string x, string name, int inputs, int outputs) =>
        G.Op("Add", MatMul(x, name + ".weight", Weights.Read(name + ".weight", inputs, outputs), inputs, outputs, outputsFirst: false), Weight(name + ".bias", [outputs]));

    private string LayerNorm(string x, string name) =>
        G.Op("LayerNormalization", [x, Weight(name + ".weight", [Config.HiddenSize]), Weight(name + ".bias", [Config.HiddenSize])],
            ("axis", -1), ("epsilon", Config.NormEpsilon));

    /// <summary>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), GPT-2's "gelu_new".</summary>
    private string Gelu(string x)
    {
        var cube = G.Op("Mul", G.Op("Mul", x, x), x);
        var inner = G.Op("Mul", G.Op("Add", x, G.Op("Mul", cube, G.Scalar("gelu_c", 0.044715f))), G.Scalar("gelu_s", MathF.Sqrt(2f / MathF.PI)));
        var t = G.Op("Add", G.Op("Tanh", inner), G.Scalar("gelu_one", 1f));
        return G.Op("Mul", G.Op("Mul", x, t), G.Scalar("gelu_half", 0.5f));
    }
}
