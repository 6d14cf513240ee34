namespace OnnxLM.ModelBuilder;

/// <summary>
/// Llama-family decoder: token embedding, per layer RMSNorm → attention with RoPE (Hugging Face rotate-half,
/// keys cached after rotation) → residual, RMSNorm → SwiGLU MLP → residual; final RMSNorm and lm_head
/// (or the tied embedding).
/// </summary>
internal sealed class LlamaGraphWriter(DecoderConfig config, IWeightSource weights, ModelBuilderOptions options)
    : DecoderGraphWriter(config, weights, options)
{
    protected override void BuildBody(string mask)
    {
        var c = Config;
        var (h, d, nh, kvh) = (c.HiddenSize, c.HeadSize, c.AttentionHeadCount, c.KeyValueHeadCount);
        var embedValues = Weights.Read("model.embed_tokens.weight", c.VocabularySize, h);
        var embed = Constant("model.embed_tokens.weight", embedValues, [c.VocabularySize, h]);
        var x = G.Op("Gather", [embed, "input_ids"], ("axis", 0));

        var (cosTable, sinTable) = RopeTables();
        var cos = G.Op("Unsqueeze", G.Op("Gather", [Constant("rope_cos", cosTable, [c.MaxPositions, d]), "position_ids"], ("axis", 0)), G.Ints("axis1", 1));
        var sin = G.Op("Unsqueeze", G.Op("Gather", [Constant("rope_sin", sinTable, [c.MaxPositions, d]), "position_ids"], ("axis", 0)), G.Ints("axis1", 1));

        for (var i = 0; i < c.LayerCount; i++)
        {
            var p = $"model.layers.{i}.";
            var y = RmsNorm(x, p + "input_layernorm.weight");
            var q = SplitHeads(Linear(y, p + "self_attn.q_proj", h, nh * d, c.AttentionBias), nh);
            var k = SplitHeads(Linear(y, p + "self_attn.k_proj", h, kvh * d, c.AttentionBias), kvh);
            var v = SplitHeads(Linear(y, p + "self_attn.v_proj", h, kvh * d, c.AttentionBias), kvh);
            var attention = Attention(i, Rope(q, cos, sin), Rope(k, cos, sin), v, mask);
            x = G.Op("Add", x, Linear(attention, p + "self_attn.o_proj", nh * d, h, false));

            y = RmsNorm(x, p + "post_attention_layernorm.weight");
            var gate = Linear(y, p + "mlp.gate_proj", h, c.IntermediateSize, false);
            var silu = G.Op("Mul", gate, G.Op("Sigmoid", gate));
            var up = Linear(y, p + "mlp.up_proj", h, c.IntermediateSize, false);
            x = G.Op("Add", x, Linear(G.Op("Mul", silu, up), p + "mlp.down_proj", c.IntermediateSize, h, false));
        }

        x = RmsNorm(x, "model.norm.weight");
        var tied = c.TieWordEmbeddings || !Weights.Contains("lm_head.weight");
        var quantizeHead = Options.Quantization is { QuantizeOutputProjection: true };
        if (tied && !quantizeHead)
        {
            MatMul(x, G.Op("Transpose", [embed], ("perm", new long[] { 1, 0 })), "logits");
        }
        else
        {
            MatMul(x, "lm_head.weight", tied ? embedValues : Weights.Read("lm_head.weight", c.VocabularySize, h), h, c.VocabularySize,
                outputsFirst: true, quantize: quantizeHead, result: "logits");
        }
    }

    private string Linear(string x, string name, int inputs, int outputs, bool bias)
    {
        var y = MatMul(x, name + ".weight", Weights.Read(name + ".weight", outputs, inputs), inputs, outputs, outputsFirst: true);
        return bias ? G.Op("Add", y, Weight(name + ".bias", [outputs])) : y;
    }

    private string RmsNorm(string x, string weight)
    {
        var meanSquare = G.Op("ReduceMean", [G.Op("Mul", x, x)], ("axes", new long[] { -1 }), ("keepdims", 1));
        var normed = G.Op("Div", x, G.Op("Sqrt", G.Op("Add", meanSquare, G.Scalar("eps", Config.NormEpsilon))));
        return G.Op("Mul", normed, Weight(weight, [Config.HiddenSize]));
    }

    /// <summary>x·cos + rotate_half(x)·sin with rotate_half(x) = concat(−x₂, x₁) over the two halves of the head.</summary>
    private string Rope(string x, string cos, string sin)
    {
        var half = Config.HeadSize / 2;
        var parts = G.Node("Split", [x, G.Ints("halves", half, half)], 2, "rope_split", ("axis", -1));
        var rotated = G.Op("Concat", [G.Op("Neg", parts[1]), parts[0]], ("axis", -1));
        return G.Op("Add", G.Op("Mul", x, cos), G.Op("Mul", rotated, sin));
    }

    /// <summary>cos/sin tables [max_positions, head_dim] with Hugging Face's layout cat(freqs, freqs) and the config's scaling.</summary>
    private (float[] Cos, float[] Sin) RopeTables()
    {
        var c = Config;
        var half = c.HeadSize / 2;
        var inv = new double[half];
        for (var i = 0; i < half; i++)
        {
            inv[i] = 1.0 / Math.Pow(c.RopeTheta, 2.0 * i / c.HeadSize);
            if (c.RopeScalingType == "llama3")
            {
                var lowWavelength = c.RopeOriginalMaxPositions / c.RopeLowFrequencyFactor;
                var highWavelength = c.RopeOriginalMaxPositions / c.RopeHighFrequencyFactor;
                var wavelength = 2 * Math.PI / inv[i];
                if (wavelength > lowWavelength)
                {
                    inv[i] /= c.RopeScalingFactor;
                }
                else if (wavelength >= highWavelength)
                {
                    var smooth = (c.RopeOriginalMaxPositions / wavelength - c.RopeLowFrequencyFactor) / (c.RopeHighFrequencyFactor - c.RopeLowFrequencyFactor);
                    inv[i] = (1 - smooth) * inv[i] / c.RopeScalingFactor + smooth * inv[i];
                }
            }
        }

        var scale = c.RopeScalingType == "linear" ? 1 / c.RopeScalingFactor : 1;
        var cos = new float[c.MaxPositions * c.HeadSize];
        var sin = new float[cos.Length];
        for (var pos = 0; pos < c.MaxPositions; pos++)
        {
            for (var i = 0; i < half; i++)
            {
                // Angles computed in float32 like PyTorch's outer(t, inv_freq), so tables match exported graphs bit for bit.
                var angle = (float)(pos * scale) * (float)inv[i];
                cos[pos * c.HeadSize + i] = cos[pos * c.HeadSize + half + i] = MathF.Cos(angle);
                sin[pos * c.HeadSize + i] = sin[pos * c.HeadSize + half + i] = MathF.Sin(angle);
            }
        }

        return (cos, sin);
    }
}
