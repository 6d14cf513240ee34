namespace OnnxLM.ModelBuilder.Tests;

/// <summary>
/// A plain forward pass written with loops (double accumulation), independent of any graph: Llama (RMSNorm,
/// rotate-half RoPE, GQA, SwiGLU) and GPT-2 (learned positions, LayerNorm, tanh GELU). Returns logits [T, V].
/// </summary>
public static class ReferenceDecoder
{
    /// <summary>Logits [T, V] of a token sequence.</summary>
    /// <param name="c">The architecture.</param>
    /// <param name="w">The weights by Hugging Face name.</param>
    /// <param name="ids">The tokens, at positions 0..T-1.</param>
    /// <param name="attentions">When given, receives each layer's attention probabilities [head][query][key] (0 after the query).</param>
    /// <param name="trace">When given, receives the blocks' outputs and says which blocks to zero.</param>
    public static float[][] Forward(DecoderConfig c, RandomCheckpoint w, int[] ids, List<double[][][]>? attentions = null, ReferenceTrace? trace = null)
    {
        var t = ids.Length;
        var h = c.HiddenSize;
        var llama = c.ModelType == "llama";
        var x = new double[t][];
        for (var i = 0; i < t; i++)
        {
            x[i] = new double[h];
            for (var j = 0; j < h; j++)
            {
                x[i][j] = llama
                    ? w["model.embed_tokens.weight"][ids[i] * h + j]
                    : w["wte.weight"][ids[i] * h + j] + w["wpe.weight"][i * h + j];
            }
        }

        for (var layer = 0; layer < c.LayerCount; layer++)
        {
            string P(string s) => llama ? $"model.layers.{layer}.{s}" : $"h.{layer}.{s}";
            var y = x.Select(r => llama ? RmsNorm(r, w[P("input_layernorm.weight")], c.NormEpsilon) : LayerNorm(r, w[P("ln_1.weight")], w[P("ln_1.bias")], c.NormEpsilon)).ToArray();
            double[][] q, k, v;
            if (llama)
            {
                q = y.Select(r => Linear(r, w[P("self_attn.q_proj.weight")], c.AttentionBias ? w[P("self_attn.q_proj.bias")] : null, c.AttentionHeadCount * c.HeadSize)).ToArray();
                k = y.Select(r => Linear(r, w[P("self_attn.k_proj.weight")], c.AttentionBias ? w[P("self_attn.k_proj.bias")] : null, c.KeyValueHeadCount * c.HeadSize)).ToArray();
                v = y.Select(r => Linear(r, w[P("self_attn.v_proj.weight")], c.AttentionBias ? w[P("self_attn.v_proj.bias")] : null, c.KeyValueHeadCount * c.HeadSize)).ToArray();
                for (var i = 0; i < t; i++)
                {
                    Rope(q[i], c.AttentionHeadCount, c, i);
                    Rope(k[i], c.KeyValueHeadCount, c, i);
                }
            }
            else
            {
                var qkv = y.Select(r => Conv1D(r, w[P("attn.c_attn.weight")], w[P("attn.c_attn.bias")], 3 * h)).ToArray();
                q = qkv.Select(r => r[..h]).ToArray();
                k = qkv.Select(r => r[h..(2 * h)]).ToArray();
                v = qkv.Select(r => r[(2 * h)..]).ToArray();
            }

            var probabilities = Enumerable.Range(0, c.AttentionHeadCount).Select(_ => Enumerable.Range(0, t).Select(_ => new double[t]).ToArray()).ToArray();
            attentions?.Add(probabilities);
            var attention = Attend(c, q, k, v, probabilities);
            if (trace?.ZeroHead is { } zero && zero.Layer == layer)
            {
                foreach (var row in attention) Array.Clear(row, zero.Head * c.HeadSize, c.HeadSize);
            }

            for (var i = 0; i < t; i++)
            {
                var o = llama ? Linear(attention[i], w[P("self_attn.o_proj.weight")], null, h) : Conv1D(attention[i], w[P("attn.c_proj.weight")], w[P("attn.c_proj.bias")], h);
                trace?.Record(2 * layer, i, t, o);
                for (var j = 0; j < h; j++) x[i][j] += o[j];
                double[] m;
                if (llama)
                {
                    var z = RmsNorm(x[i], w[P("post_attention_layernorm.weight")], c.NormEpsilon);
                    var gate = Linear(z, w[P("mlp.gate_proj.weight")], null, c.IntermediateSize);
                    var up = Linear(z, w[P("mlp.up_proj.weight")], null, c.IntermediateSize);
                    var act = gate.Select((g, n) => g / (1 + Math.Exp(-g)) * up[n]).ToArray();
                    m = Linear(act, w[P("mlp.down_proj.weight")], null, h);
                }
                else
                {
                    var z = LayerNorm(x[i], w[P("ln_2.weight")], w[P("ln_2.bias")], c.NormEpsilon);
                    var fc = Conv1D(z, w[P("mlp.c_fc.weight")], w[P("mlp.c_fc.bias")], c.IntermediateSize)
                        .Select(a => 0.5 * a * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (a + 0.044715 * a * a * a)))).ToArray();
                    m = Conv1D(fc, w[P("mlp.c_proj.weight")], w[P("mlp.c_proj.bias")], h);
                }

                if (trace?.ZeroMlp.Contains(layer) == true) Array.Clear(m);
                trace?.Record((2 * layer) + 1, i, t, m);
                for (var j = 0; j < h; j++) x[i][j] += m[j];
            }
        }

        var head = llama ? (c.TieWordEmbeddings ? w["model.embed_tokens.weight"] : w["lm_head.weight"]) : w["wte.weight"];
        return x.Select(r =>
        {
            var n = llama ? RmsNorm(r, w["model.norm.weight"], c.NormEpsilon) : LayerNorm(r, w["ln_f.weight"], w["ln_f.bias"], c.NormEpsilon);
            return Linear(n, head, null, c.VocabularySize).Select(d => (float)d).ToArray();
        }).ToArray();
    }

    private static double[][] Attend(DecoderConfig c, double[][] q, double[][] k, double[][] v, double[][][] probabilities)
    {
        var t = q.Length;
        var d = c.HeadSize;
        var groups = c.AttentionHeadCount / c.KeyValueHeadCount;
        var output = new double[t][];
        for (var i = 0; i < t; i++)
        {
            output[i] = new double[c.AttentionHeadCount * d];
            for (var head = 0; head < c.AttentionHeadCount; head++)
            {
                var kvHead = head / groups;
                var scores = new double[i + 1];
                for (var j = 0; j <= i; j++)
                {
                    double s = 0;
                    for (var e = 0; e < d; e++) s += q[i][head * d + e] * k[j][kvHead * d + e];
                    scores[j] = s / Math.Sqrt(d);
                }

                var max = scores.Max();
                var exp = scores.Select(s => Math.Exp(s - max)).ToArray();
                var sum = exp.Sum();
                for (var j = 0; j <= i; j++) probabilities[head][i][j] = exp[j] / sum;
                for (var j = 0; j <= i; j++)
                    for (var e = 0; e < d; e++)
                        output[i][head * d + e] += exp[j] / sum * v[j][kvHead * d + e];
            }
        }

        return output;
    }

    private static void Rope(double[] x, int heads, DecoderConfig c, int position)
    {
        var d = c.HeadSize;
        var half = d / 2;
        for (var head = 0; head < heads; head++)
        {
            for (var i = 0; i < half; i++)
            {
                var angle = position * Frequency(c, i);
                var (a, b) = (x[head * d + i], x[head * d + half + i]);
                x[head * d + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
                x[head * d + half + i] = b * Math.Cos(angle) + a * Math.Sin(angle);
            }
        }
    }

    /// <summary>
    /// Rotation speed of pair i: θ^(-2i/d), then Hugging Face's scalings. linear: positions divided by the factor.
    /// llama3: wavelengths longer than original/low are slowed by the factor, shorter than original/high kept, and
    /// the band between blends the two by how many wavelengths fit in the original context.
    /// </summary>
    private static double Frequency(DecoderConfig c, int i)
    {
        var frequency = Math.Pow(c.RopeTheta, -2.0 * i / c.HeadSize);
        switch (c.RopeScalingType)
        {
            case "linear":
                return frequency / c.RopeScalingFactor;
            case "llama3":
                var wavelength = 2 * Math.PI / frequency;
                if (wavelength < c.RopeOriginalMaxPositions / c.RopeHighFrequencyFactor) return frequency;
                if (wavelength > c.RopeOriginalMaxPositions / c.RopeLowFrequencyFactor) return frequency / c.RopeScalingFactor;
                var blend = (c.RopeOriginalMaxPositions / wavelength - c.RopeLowFrequencyFactor) / (c.RopeHighFrequencyFactor - c.RopeLowFrequencyFactor);
                return blend * frequency + (1 - blend) * frequency / c.RopeScalingFactor;
            default:
                return frequency;
        }
    }

    private static double[] Linear(double[] x, float[] weight, float[]? bias, int outputs)
    {
        var result = new double[outputs];
        for (var o = 0; o < outputs; o++)
        {
            double s = bias?[o] ?? 0;
            for (var i = 0; i < x.Length; i++) s += weight[o * x.Length + i] * x[i];
            result[o] = s;
        }

        return result;
    }

    private static double[] Conv1D(double[] x, float[] weight, float[] bias, int outputs)
    {
        var result = new double[outputs];
        for (var o = 0; o < outputs; o++)
        {
            double s = bias[o];
            for (var i = 0; i < x.Length; i++) s += weight[i * outputs + o] * x[i];
            result[o] = s;
        }

        return result;
    }

    private static double[] RmsNorm(double[] x, float[] weight, float eps)
    {
        var ms = x.Sum(a => a * a) / x.Length;
        return x.Select((a, i) => a / Math.Sqrt(ms + eps) * weight[i]).ToArray();
    }

    private static double[] LayerNorm(double[] x, float[] weight, float[] bias, float eps)
    {
        var mean = x.Average();
        var variance = x.Sum(a => (a - mean) * (a - mean)) / x.Length;
        return x.Select((a, i) => (a - mean) / Math.Sqrt(variance + eps) * weight[i] + bias[i]).ToArray();
    }
}
