namespace OnnxLM.ModelBuilder;

/// <summary>
/// Llama-family decoder: token embedding, per layer RMSNorm → attention with RoPE (Hugging Face rotate-half,
/// keys cached after rotation; standard operators at position_ids, or GroupQueryAttention's own rotary from the same
/// tables at the positions where it places the new tokens) → residual, RMSNorm → SwiGLU MLP → residual; final RMSNorm and lm_head
/// (or the tied embedding).
/// </summary>
internal sealed class LlamaGraphWriter(DecoderConfig config, IWeightSource weights, ModelBuilderOptions options)
    : DecoderGraphWriter(config, weights, options)
{
    protected override void BuildBody()
    {
        var c = Config;
        var (h, d, nh, kvh) = (c.HiddenSize, c.HeadSize, c.AttentionHeadCount, c.KeyValueHeadCount);
        float[]? embedValues = Weights.Read("model.embed_tokens.weight", c.VocabularySize, h);
        var tied = c.TieWordEmbeddings || !Weights.Contains("lm_head.weight");
        var quantizeHead = Options.Quantization is { QuantizeOutputProjection: true };
        string x;
        string? embed = null;
        QuantizedInitializers? sharedHead = null;
        if (tied && quantizeHead && Options.Quantization is { Symmetric: true } shared && h % shared.BlockSize == 0)
        {
            // The tied table is stored once, quantized: GatherBlockQuantized looks rows up in the output projection's
            // MatMulNBits blocks (as ONNX Runtime GenAI's builder shares tied embeddings), so no float copy is written.
            // MatMulNBits needs its blocks as [V, blocks, blob]; GatherBlockQuantized reads that same initializer with the
            // last axis quantized (one block per blob), its scales viewed as [V, blocks, 1], and yields [B, S, blocks, block].
            sharedHead = QuantizedWeight("lm_head.weight", embedValues, h, c.VocabularySize);
            var blocks = h / shared.BlockSize;
            var scales = G.Op("Reshape", sharedHead.Scales, G.Ints("embedding_scales_shape", c.VocabularySize, blocks, 1));
            var rows = G.MicrosoftOp("GatherBlockQuantized", [sharedHead.Packed, "input_ids", scales], null,
                ("gather_axis", 0L), ("quantize_axis", 2L), ("block_size", (long)shared.BlockSize), ("bits", (long)shared.Bits));
            x = G.Op("Reshape", rows, G.Ints("embedding_shape", 0, 0, h));
        }
        else
        {
            embed = Constant("model.embed_tokens.weight", embedValues, [c.VocabularySize, h]);
            x = G.Op("Gather", [embed, "input_ids"], ("axis", 0));
        }

        // The table is only needed again for a quantized tied head that could not share it; let a 1 GB array go otherwise.
        var headValues = tied && quantizeHead && sharedHead is null ? embedValues : null;
        embedValues = null;
        x = AddTokenTypes(x);

        // cos/sin rows of the positions, [B, S, D], from tables of [max_positions, D/2] (as ONNX Runtime GenAI writes them:
        // Hugging Face's layout repeats each half, cat(freqs, freqs), so the half is stored and concatenated after the
        // Gather), broadcast over the heads: [B, 1, S, D] against [B, heads, S, D] (standard attention) or [B, S, 1, D]
        // against [B, S, heads, D] (GroupQueryAttention takes heads packed per token).
        // GroupQueryAttention rotates q and k itself from the same tables (do_rotary), at the positions where it places the
        // new tokens, which are the rows' real positions; its rotary needs a head size that is a multiple of 16.
        var (cosTable, sinTable) = RopeTables();
        var tables = (Cos: Constant("rope_cos", cosTable, [c.MaxPositions, d / 2]), Sin: Constant("rope_sin", sinTable, [c.MaxPositions, d / 2]));
        var fusedRotary = GroupQuery && d % 16 == 0;
        string Rows(string table) => G.Op("Concat", [table, table], ("axis", -1));
        var headAxis = G.Ints("head_axis", GroupQuery ? 2 : 1);
        string Positions(string table) => G.Op("Unsqueeze", Rows(G.Op("Gather", [table, "position_ids"], ("axis", 0))), headAxis);
        var (cos, sin) = fusedRotary ? ("", "") : (Positions(tables.Cos), Positions(tables.Sin)); // unused when fused

        for (var i = 0; i < c.LayerCount; i++)
        {
            var p = $"model.layers.{i}.";
            var y = RmsNorm(x, p + "input_layernorm.weight");
            var qkv = Linears(y, p + "self_attn.qkv_proj", [(p + "self_attn.q_proj", nh * d), (p + "self_attn.k_proj", kvh * d), (p + "self_attn.v_proj", kvh * d)],
                h, c.AttentionBias);
            string attention;
            if (GroupQuery)
            {
                attention = fusedRotary
                    ? GroupQueryAttention(i, qkv[0], qkv[1], qkv[2], tables)
                    : GroupQueryAttention(i, PackedRope(qkv[0], nh, cos, sin), PackedRope(qkv[1], kvh, cos, sin), qkv[2]);
            }
            else
            {
                var (q, k, v) = (SplitHeads(qkv[0], nh), SplitHeads(qkv[1], kvh), SplitHeads(qkv[2], kvh));
                attention = Attention(i, Rope(q, cos, sin), Rope(k, cos, sin), v);
            }
            x = G.Op("Add", x, Linear(attention, p + "self_attn.o_proj", nh * d, h, false));

            y = RmsNorm(x, p + "post_attention_layernorm.weight");
            var gateUp = Linears(y, p + "mlp.gate_up_proj", [(p + "mlp.gate_proj", c.IntermediateSize), (p + "mlp.up_proj", c.IntermediateSize)], h, false);
            var (gate, up) = (gateUp[0], gateUp[1]);
            var silu = G.Op("Mul", gate, G.Op("Sigmoid", gate));
            x = G.Op("Add", x, Linear(G.Op("Mul", silu, up), p + "mlp.down_proj", c.IntermediateSize, h, false));
        }

        x = RmsNorm(KeepLastPositions(x), "model.norm.weight");
        if (sharedHead is not null)
        {
            MatMulNBits(x, sharedHead, "logits");
        }
        else if (tied && !quantizeHead)
        {
            MatMul(x, G.Op("Transpose", [embed!], ("perm", new long[] { 1, 0 })), "logits");
        }
        else
        {
            MatMul(x, "lm_head.weight", headValues ?? Weights.Read("lm_head.weight", c.VocabularySize, h), h, c.VocabularySize,
                outputsFirst: true, quantize: quantizeHead, result: "logits");
        }
    }

    private string Linear(string x, string name, int inputs, int outputs, bool bias)
    {
        var y = MatMul(x, name + ".weight", Weights.Read(name + ".weight", outputs, inputs), inputs, outputs, outputsFirst: true);
        return bias ? G.Op("Add", y, Weight(name + ".bias", [outputs])) : y;
    }

    /// <summary>
    /// Several Linear layers reading the same input (q/k/v, gate/up). Float graphs keep one MatMul each; quantized graphs
    /// stack the weights' rows into one MatMulNBits named <paramref name="fusedName"/> and split its output, one product
    /// instead of several on the decode path. Block quantization works row by row, so the stacked rows are quantized
    /// exactly as they would be alone.
    /// </summary>
    private string[] Linears(string x, string fusedName, (string Name, int Outputs)[] parts, int inputs, bool bias)
    {
        if (Options.Quantization is null)
        {
            return [.. parts.Select(part => Linear(x, part.Name, inputs, part.Outputs, bias))];
        }

        var total = parts.Sum(part => part.Outputs);
        var stacked = new float[(long)total * inputs];
        var row = 0;
        foreach (var (name, outputs) in parts)
        {
            Weights.Read(name + ".weight", outputs, inputs).CopyTo(stacked, (long)row * inputs);
            row += outputs;
        }

        var y = MatMul(x, fusedName + ".weight", stacked, inputs, total, outputsFirst: true);
        var split = G.Node("Split", [y, G.Ints("fused_split", [.. parts.Select(part => (long)part.Outputs)])], parts.Length, "fused", ("axis", -1));
        return bias ? [.. split.Select((s, i) => G.Op("Add", s, Weight(parts[i].Name + ".bias", [parts[i].Outputs])))] : split;
    }

    /// <summary>
    /// x / √(mean(x²) + ε) · weight, with the square written as Pow(x, 2): that is the form ONNX Runtime's optimizer
    /// recognises and fuses into one SimplifiedLayerNormalization kernel (with x·x it leaves six operators per norm,
    /// 17 norms per kjv-tiny step).
    /// </summary>
    private string RmsNorm(string x, string weight)
    {
        var meanSquare = G.Op("ReduceMean", [G.Op("Pow", x, G.Scalar("two", 2f))], ("axes", new long[] { -1 }), ("keepdims", 1));
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

    /// <summary>RoPE on heads packed per token: [B, S, heads*D] → [B, S, heads, D], rotated, → [B, S, heads*D].</summary>
    private string PackedRope(string x, int heads, string cos, string sin)
    {
        var split = G.Op("Reshape", x, G.Ints("token_heads_shape", 0, 0, heads, Config.HeadSize));
        return G.Op("Reshape", Rope(split, cos, sin), G.Ints("packed_shape", 0, 0, heads * Config.HeadSize));
    }

    /// <summary>cos/sin tables [max_positions, head_dim / 2] (one half of Hugging Face's cat(freqs, freqs)) with the config's scaling.</summary>
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
        var cos = new float[(long)c.MaxPositions * half];
        var sin = new float[cos.Length];
        for (var pos = 0; pos < c.MaxPositions; pos++)
        {
            for (var i = 0; i < half; i++)
            {
                // Angles computed in float32 like PyTorch's outer(t, inv_freq), so tables match exported graphs bit for bit.
                var angle = (float)(pos * scale) * (float)inv[i];
                cos[(long)pos * half + i] = MathF.Cos(angle);
                sin[(long)pos * half + i] = MathF.Sin(angle);
            }
        }

        return (cos, sin);
    }
}
