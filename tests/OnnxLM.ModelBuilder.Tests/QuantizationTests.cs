using OnnxLM.Tests;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>
/// Weight-only quantization: the blocks written to model.onnx, unpacked here by the MatMulNBits layout (independently of
/// the builder's own code), reproduce the weights within the quantization step; the quantized graph computes exactly the
/// reference forward pass run with those dequantized weights; and bad options are typed errors.
/// </summary>
public sealed class QuantizationTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("onnxlm-quant-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    // hidden 40 and intermediate 72: K is not a multiple of the block in most cases, so the padded tail of a row is covered.
    private static DecoderConfig Llama(bool tied) => new()
    {
        ModelType = "llama", HiddenSize = 40, IntermediateSize = 72, AttentionHeadCount = 4, KeyValueHeadCount = 2, HeadSize = 10,
        LayerCount = 2, VocabularySize = 83, MaxPositions = 32, BosTokenId = 0, EosTokenIds = [1], TieWordEmbeddings = tied,
    };

    /// <summary>
    /// A matrix the quantized graph stores: its initializer name and the checkpoint tensors whose rows it stacks (Llama
    /// q/k/v and gate/up share one MatMulNBits; GPT-2's Conv1D weights are [in, out] in the checkpoint, transposed).
    /// </summary>
    private sealed record Stored(string Name, string[] Parts, bool Transposed)
    {
        public (int Rows, int Columns, float[] Values) Original(RandomCheckpoint w)
        {
            var rows = new List<float[]>();
            var columns = 0;
            foreach (var part in Parts)
            {
                var (shape, values) = w.Tensors[part];
                var (r, c) = Transposed ? ((int)shape[1], (int)shape[0]) : ((int)shape[0], (int)shape[1]);
                rows.Add(Transposed ? Transpose(values, c, r) : values);
                columns = c;
            }

            var all = rows.SelectMany(v => v).ToArray();
            return (all.Length / columns, columns, all);
        }

        /// <summary>Puts dequantized rows back under the checkpoint names they came from.</summary>
        public void WriteBack(float[] values, int columns, RandomCheckpoint into)
        {
            var row = 0;
            foreach (var part in Parts)
            {
                var shape = into.Tensors[part].Shape;
                var rows = (int)(Transposed ? shape[1] : shape[0]);
                var slice = values.AsSpan(row * columns, rows * columns).ToArray();
                into.Tensors[part] = (shape, Transposed ? Transpose(slice, rows, columns) : slice);
                row += rows;
            }
        }
    }

    private static List<Stored> QuantizedMatrices(DecoderConfig c, bool head)
    {
        var list = new List<Stored>();
        for (var l = 0; l < c.LayerCount; l++)
        {
            if (c.ModelType == "gpt2")
            {
                list.AddRange(new[] { "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj" }.Select(m => new Stored($"h.{l}.{m}.weight", [$"h.{l}.{m}.weight"], true)));
                continue;
            }

            var p = $"model.layers.{l}.";
            list.Add(new Stored(p + "self_attn.qkv_proj.weight", [p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"], false));
            list.Add(new Stored(p + "self_attn.o_proj.weight", [p + "self_attn.o_proj.weight"], false));
            list.Add(new Stored(p + "mlp.gate_up_proj.weight", [p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"], false));
            list.Add(new Stored(p + "mlp.down_proj.weight", [p + "mlp.down_proj.weight"], false));
        }

        if (head) list.Add(new Stored("lm_head.weight", [c.TieWordEmbeddings ? (c.ModelType == "gpt2" ? "wte.weight" : "model.embed_tokens.weight") : "lm_head.weight"], false));
        return list;
    }

    [Theory]
    [InlineData(4, 16, true)]
    [InlineData(4, 32, true)]
    [InlineData(4, 64, false)]
    [InlineData(4, 128, true)]
    [InlineData(8, 32, true)]
    [InlineData(8, 64, false)]
    public void WrittenBlocksReproduceTheWeightsWithinHalfAStep(int bits, int block, bool symmetric)
    {
        var config = Llama(tied: false);
        var weights = RandomCheckpoint.For(config, seed: bits * 100 + block);
        var quantization = new WeightQuantization { Bits = bits, BlockSize = block, Symmetric = symmetric };
        DecoderModelBuilder.Build(config, weights, _out, new ModelBuilderOptions { Quantization = quantization });
        var file = OnnxModelFile.Read(Path.Combine(_out, "model.onnx"));
        foreach (var matrix in QuantizedMatrices(config, head: true))
        {
            var name = matrix.Name;
            var (rows, columns, original) = matrix.Original(weights);
            var blocks = (columns + block - 1) / block;
            var stored = Unpack(file, name, rows, columns, bits, block, symmetric);
            var levels = (1 << bits) - 1;
            for (var r = 0; r < rows; r++)
            {
                for (var b = 0; b < blocks; b++)
                {
                    var (scale, zero) = (stored.Scales[r * blocks + b], stored.ZeroPoints[r * blocks + b]);
                    var values = original.AsSpan(r * columns + b * block, Math.Min(block, columns - b * block));
                    float lo = 0, hi = 0, largest = 0;
                    foreach (var v in values) (lo, hi, largest) = (Math.Min(lo, v), Math.Max(hi, v), Math.Max(largest, Math.Abs(v)));

                    // The scale the contrib-op convention implies: the largest magnitude on 2^(bits-1) steps, or the range
                    // (zero included) on 2^bits - 1 steps.
                    var expectedScale = symmetric ? largest / (1 << (bits - 1)) : (hi - lo) / levels;
                    Assert.True(Math.Abs(Math.Abs(scale) - expectedScale) <= 1e-6f * expectedScale, $"{name} row {r} block {b}: scale {scale}, expected ±{expectedScale}");
                    for (var j = 0; j < block; j++)
                    {
                        var q = stored.Integers[r * blocks * block + b * block + j];
                        if (b * block + j >= columns)
                        {
                            Assert.True(q == zero, $"{name} row {r}: padding past K stores {q}, not the zero point {zero}");
                            continue;
                        }

                        var error = Math.Abs((q - zero) * scale - values[j]);
                        // Round to nearest: half a step, except where the grid ends (symmetric: the far positive end has one
                        // step fewer than the negative one) and the weight was clipped onto its last level.
                        var bound = (q == levels || q == 0 ? 1f : 0.5f) * Math.Abs(scale) * (1 + 1e-5f) + 1e-7f;
                        Assert.True(error <= bound, $"{name} row {r} column {b * block + j}: |{values[j]} - {(q - zero) * scale}| = {error} > {bound}");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(4, true)]
    [InlineData(4, false)]
    [InlineData(8, true)]
    public void ScaleSearchHasLessReconstructionErrorThanRoundToNearest(int bits, bool symmetric)
    {
        var config = Llama(tied: false);
        var weights = RandomCheckpoint.For(config, seed: 77);
        double SquaredError(QuantizationMethod method)
        {
            var folder = Path.Combine(_out, method.ToString());
            DecoderModelBuilder.Build(config, weights, folder, new ModelBuilderOptions
            {
                Quantization = new WeightQuantization { Bits = bits, BlockSize = 32, Symmetric = symmetric, Method = method },
            });
            var file = OnnxModelFile.Read(Path.Combine(folder, "model.onnx"));
            double sum = 0;
            foreach (var matrix in QuantizedMatrices(config, head: true))
            {
                var (rows, columns, original) = matrix.Original(weights);
                var restored = Unpack(file, matrix.Name, rows, columns, bits, 32, symmetric).Dequantize(rows, columns);
                for (var i = 0; i < original.Length; i++) sum += Math.Pow(original[i] - restored[i], 2);
            }

            return sum;
        }

        var rtn = SquaredError(QuantizationMethod.RoundToNearest);
        var search = SquaredError(QuantizationMethod.ScaleSearch);
        Assert.True(search < 0.97 * rtn, $"scale search {search} vs round to nearest {rtn}");
    }

    public static TheoryData<string, int, int, bool, bool, bool> GraphCases => new()
    {
        // type, bits, block, symmetric, tied, quantized output projection
        { "llama", 4, 32, true, false, true },
        { "llama", 4, 16, false, true, false },
        { "llama", 8, 64, true, false, true },
        { "llama", 8, 32, false, true, false },
        { "gpt2", 4, 32, true, true, false },
    };

    [Theory]
    [MemberData(nameof(GraphCases))]
    public void QuantizedGraphMatchesTheReferenceRunWithTheDequantizedWeights(string type, int bits, int block, bool symmetric, bool tied, bool head)
    {
        var config = type == "gpt2"
            ? new DecoderConfig
            {
                ModelType = "gpt2", HiddenSize = 48, IntermediateSize = 80, AttentionHeadCount = 4, KeyValueHeadCount = 4, HeadSize = 12,
                LayerCount = 2, VocabularySize = 67, MaxPositions = 32, TieWordEmbeddings = true, BosTokenId = 0, EosTokenIds = [1],
            }
            : Llama(tied);
        var weights = RandomCheckpoint.For(config, seed: bits + block + (tied ? 1 : 0));
        var quantization = new WeightQuantization
        {
            Bits = bits, BlockSize = block, Symmetric = symmetric, QuantizeOutputProjection = head,
            AccuracyLevel = 1, // float32 activations: the product itself is exact up to float rounding
        };
        DecoderModelBuilder.Build(config, weights, _out, new ModelBuilderOptions { Quantization = quantization });

        // The reference runs with every quantized matrix replaced by what the file's blocks dequantize to.
        var file = OnnxModelFile.Read(Path.Combine(_out, "model.onnx"));
        var dequantized = new RandomCheckpoint();
        foreach (var (name, tensor) in weights.Tensors) dequantized.Tensors[name] = tensor;
        var matrices = QuantizedMatrices(config, head);
        foreach (var matrix in matrices)
        {
            var (rows, columns, _) = matrix.Original(weights);
            matrix.WriteBack(Unpack(file, matrix.Name, rows, columns, bits, block, symmetric).Dequantize(rows, columns), columns, dequantized);
        }

        // Every packed initializer is one of those matrices, and one MatMulNBits reads each.
        Assert.Equal(matrices.Select(m => m.Name).Order(), file.Initializers.Values.Where(i => i.DataType == 2 && !i.Name.EndsWith(".zero_points", StringComparison.Ordinal)).Select(i => i.Name).Order());
        Assert.Equal(matrices.Count, file.Nodes.Count(n => n.OpType == "MatMulNBits"));
        var ids = new[] { 3, 17, 5, config.VocabularySize - 1, 42, 9, 0, 11, 23, 7 };
        Assert.True(SharedCheckpointConversionTests.MaxAbsDiff(ReferenceDecoder.Forward(config, weights, ids)[^1], ReferenceDecoder.Forward(config, dequantized, ids)[^1]) > 1e-3f,
            "quantizing must change the logits, or this test could not tell the dequantized weights from the originals");
        BuiltGraphTests.AssertMatchesReference(_out, config, dequantized, ids);

        using var model = LanguageModel.Load(_out, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        Assert.Equal($"int{bits}", model.Info.WeightType);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void AFloatFolderBuiltHereConvertsAgainFromItsGraph(string type)
    {
        // The route kjv-tiny's quantized copies take: weights read back from a float graph (Llama matrices stored
        // transposed, GPT-2's as the checkpoint has them). Converted again without quantizing, it must be the same model.
        var config = type == "gpt2"
            ? new DecoderConfig
            {
                ModelType = "gpt2", HiddenSize = 24, IntermediateSize = 40, AttentionHeadCount = 3, KeyValueHeadCount = 3, HeadSize = 8,
                LayerCount = 2, VocabularySize = 61, MaxPositions = 32, TieWordEmbeddings = true, BosTokenId = 0, EosTokenIds = [1],
            }
            : Llama(tied: false) with { AttentionBias = true };
        var weights = RandomCheckpoint.For(config, seed: 9);
        var first = Path.Combine(_out, "first");
        DecoderModelBuilder.Build(config, weights, first, new ModelBuilderOptions { Float16Weights = false });
        File.WriteAllText(Path.Combine(first, "config.json"), type == "gpt2"
            ? """{ "model_type": "gpt2", "n_embd": 24, "n_head": 3, "n_layer": 2, "n_inner": 40, "vocab_size": 61, "n_positions": 32, "bos_token_id": 0, "eos_token_id": 1 }"""
            : """
              { "model_type": "qwen2", "hidden_size": 40, "intermediate_size": 72, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 10,
                "num_hidden_layers": 2, "vocab_size": 83, "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "tie_word_embeddings": false,
                "bos_token_id": 0, "eos_token_id": 1 }
              """);
        var second = Path.Combine(_out, "second");
        DecoderModelBuilder.Convert(first, second);
        BuiltGraphTests.AssertMatchesReference(second, config, weights, [2, 50, 13, 4, 29, 0, 31, 8]);
    }

    [Fact]
    public void BadOptionsAreTypedErrorsNamingTheOption()
    {
        var q = new WeightQuantization();
        Assert.Equal("Bits", Assert.Throws<ArgumentOutOfRangeException>(() => q.Bits = 3).ParamName);
        Assert.Equal("BlockSize", Assert.Throws<ArgumentOutOfRangeException>(() => q.BlockSize = 48).ParamName);
        Assert.Equal("BlockSize", Assert.Throws<ArgumentOutOfRangeException>(() => q.BlockSize = 8).ParamName);
        Assert.Equal("AccuracyLevel", Assert.Throws<ArgumentOutOfRangeException>(() => q.AccuracyLevel = 5).ParamName);
        Assert.Contains("int4 or int8", Assert.Throws<ArgumentException>(() => WeightQuantization.Parse("int3")).Message);
        Assert.Equal(8, WeightQuantization.Parse("INT8").Bits);
        Assert.Equal((4, 32, true), (q.Bits, q.BlockSize, q.Symmetric));

        // A quantized folder cannot be read back as a checkpoint: its weights are no longer the originals.
        var config = Llama(tied: true);
        DecoderModelBuilder.Build(config, RandomCheckpoint.For(config, 1), _out, new ModelBuilderOptions { Quantization = new WeightQuantization() });
        File.WriteAllText(Path.Combine(_out, "config.json"), """
            { "model_type": "llama", "hidden_size": 40, "intermediate_size": 72, "num_attention_heads": 4, "num_key_value_heads": 2,
              "head_dim": 10, "num_hidden_layers": 2, "vocab_size": 83, "max_position_embeddings": 32, "tie_word_embeddings": true }
            """);
        var e = Assert.Throws<ModelFormatException>(() => DecoderModelBuilder.Convert(_out, Path.Combine(_out, "again"), new ModelBuilderOptions { Quantization = new WeightQuantization() }));
        Assert.Contains("quantized", e.Message);
    }

    /// <summary>A matrix's blocks as the file stores them: integers [rows, blocks, block], scales and zero points [rows, blocks].</summary>
    internal sealed record Blocks(int Bits, int BlockSize, int[] Integers, float[] Scales, int[] ZeroPoints)
    {
        public float[] Dequantize(int rows, int columns)
        {
            var blocks = (columns + BlockSize - 1) / BlockSize;
            var values = new float[rows * columns];
            for (var r = 0; r < rows; r++)
                for (var c = 0; c < columns; c++)
                {
                    var b = c / BlockSize;
                    values[r * columns + c] = (Integers[r * blocks * BlockSize + c] - ZeroPoints[r * blocks + b]) * Scales[r * blocks + b];
                }

            return values;
        }
    }

    /// <summary>
    /// Reads a MatMulNBits weight by the contrib-op layout: B uint8 [N, blocks, block·bits/8] with 4-bit values low nibble
    /// first, scales [N, blocks], zero points uint8 [N, ceil(blocks·bits/8)] packed the same way, or 2^(bits−1) when absent.
    /// </summary>
    internal static Blocks Unpack(OnnxModelFile file, string name, int rows, int columns, int bits, int block, bool symmetric)
    {
        var blocks = (columns + block - 1) / block;
        var b = file.Initializers[name];
        Assert.Equal([rows, blocks, block * bits / 8], b.Dims);
        var packed = file.ReadBytes(b);
        var integers = new int[rows * blocks * block];
        for (var i = 0; i < integers.Length; i++)
        {
            integers[i] = bits == 8 ? packed[i] : i % 2 == 0 ? packed[i / 2] & 0x0F : packed[i / 2] >> 4;
        }

        var scales = file.ReadFloats(file.Initializers[name + ".scales"]);
        Assert.Equal(rows * blocks, scales.Length);
        var zeroPoints = Enumerable.Repeat(1 << (bits - 1), rows * blocks).ToArray();
        Assert.Equal(!symmetric, file.Initializers.ContainsKey(name + ".zero_points"));
        if (!symmetric)
        {
            var z = file.Initializers[name + ".zero_points"];
            var perRow = (blocks * bits + 7) / 8;
            Assert.Equal([rows, perRow], z.Dims);
            var bytes = file.ReadBytes(z);
            for (var r = 0; r < rows; r++)
                for (var k = 0; k < blocks; k++)
                {
                    zeroPoints[r * blocks + k] = bits == 8 ? bytes[r * perRow + k] : (bytes[r * perRow + k / 2] >> (k % 2 * 4)) & 0x0F;
                }
        }

        return new Blocks(bits, block, integers, scales, zeroPoints);
    }

    private static float[] Transpose(float[] values, int rows, int columns)
    {
        var t = new float[values.Length];
        for (var r = 0; r < rows; r++)
            for (var c = 0; c < columns; c++)
                t[c * rows + r] = values[r * columns + c];
        return t;
    }
}
