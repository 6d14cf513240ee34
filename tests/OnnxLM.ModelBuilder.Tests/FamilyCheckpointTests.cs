using System.Text.Json.Nodes;
using OnnxLM.Build;
using OnnxLM.ModelBuilder.Onnx;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>
/// Checkpoints written by build/make-checkpoint.cs with Llama-3.2-1B's and Qwen2.5-0.5B's file conventions (bf16
/// safetensors, tied embeddings without lm_head.weight, llama3 rope scaling, Qwen2 q/k/v biases, the published config.json
/// fields), at test size, convert with <c>DecoderModelBuilder.Convert</c> and match the naive reference pass run with the
/// bf16 values (recomputed from the generator's seed here, not read back through the converter's safetensors reader).
/// </summary>
public sealed class FamilyCheckpointTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("onnxlm-family-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    /// <summary>The family at test size: 2 layers, hidden 64, 4 heads of 16 over 2 key/value heads, vocabulary 300.</summary>
    internal static CheckpointSpec Small(string family) =>
        CheckpointSpec.Named(family) with { Layers = 2, Hidden = 64, Heads = 4, KvHeads = 2, HeadDim = 16, Intermediate = 96, Vocab = 300 };

    /// <summary>The generator's values for every tensor, rounded to bf16 as the file stores them.</summary>
    internal static RandomCheckpoint Expected(CheckpointSpec spec, long seed)
    {
        var checkpoint = new RandomCheckpoint();
        foreach (var (name, shape, ones) in spec.Tensors())
        {
            var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (long start = 0, chunk = 0; start < values.Length; start += 1 << 20, chunk++)
            {
                CheckpointWriter.Fill(values.AsSpan((int)start, (int)Math.Min(1 << 20, values.Length - start)), ones, seed, name, chunk);
            }

            for (var i = 0; i < values.Length; i++) values[i] = CheckpointWriter.FromBFloat16(CheckpointWriter.ToBFloat16(values[i]));
            checkpoint.Tensors[name] = (shape, values);
        }

        return checkpoint;
    }

    private string Write(CheckpointSpec spec, long seed)
    {
        var folder = Path.Combine(_out, spec.Family + "-hf");
        CheckpointWriter.Write(spec, folder, seed);
        return folder;
    }

    [Theory]
    [InlineData("llama-3.2-1b")]
    [InlineData("qwen2.5-0.5b")]
    public void ConfigIsReadAsThePublishedModelsIs(string family)
    {
        var spec = Small(family);
        var config = DecoderConfig.Load(Write(spec, seed: 1));
        Assert.Equal(("llama", 64, 96, 4, 2, 16, 2, 300), (config.ModelType, config.HiddenSize, config.IntermediateSize, config.AttentionHeadCount,
            config.KeyValueHeadCount, config.HeadSize, config.LayerCount, config.VocabularySize));
        Assert.True(config.TieWordEmbeddings);
        if (spec.Family == "llama")
        {
            Assert.Equal(("llama3", 32.0, 1.0, 4.0, 8192, 500000.0, 131072, 1e-5f, false),
                (config.RopeScalingType, config.RopeScalingFactor, config.RopeLowFrequencyFactor, config.RopeHighFrequencyFactor,
                    config.RopeOriginalMaxPositions, config.RopeTheta, config.MaxPositions, config.NormEpsilon, config.AttentionBias));
        }
        else
        {
            Assert.Equal(((string?)null, 1000000.0, 32768, 1e-6f, true),
                (config.RopeScalingType, config.RopeTheta, config.MaxPositions, config.NormEpsilon, config.AttentionBias));
        }
    }

    [Theory]
    [InlineData("llama-3.2-1b")]
    [InlineData("qwen2.5-0.5b")]
    public void Float32ConversionMatchesTheReference(string family)
    {
        var spec = Small(family);
        var checkpoint = Write(spec, seed: 7);
        var built = Path.Combine(_out, "fp32");
        DecoderModelBuilder.Convert(checkpoint, built);
        var config = DecoderConfig.Load(checkpoint);
        BuiltGraphTests.AssertMatchesReference(built, config, Expected(spec, seed: 7), [5, 299, 17, 0, 128, 64, 3, 250, 91, 12]);

        var genai = JsonNode.Parse(File.ReadAllText(Path.Combine(built, "genai_config.json")))!["model"]!;
        Assert.Equal((spec.MaxPositions, 4, 2, 16, 2, 300), ((int)genai["context_length"]!, (int)genai["decoder"]!["num_attention_heads"]!,
            (int)genai["decoder"]!["num_key_value_heads"]!, (int)genai["decoder"]!["head_size"]!, (int)genai["decoder"]!["num_hidden_layers"]!, (int)genai["vocab_size"]!));
        Assert.Equal(config.EosTokenIds[0], (int)genai["eos_token_id"]!);
    }

    [Theory]
    [InlineData("llama-3.2-1b", "fp16", 1e-3)]
    [InlineData("qwen2.5-0.5b", "fp16", 1e-3)]
    [InlineData("llama-3.2-1b", "int8", 0.04)]
    [InlineData("qwen2.5-0.5b", "int8", 0.04)]
    [InlineData("llama-3.2-1b", "int4", 0.35)]
    [InlineData("qwen2.5-0.5b", "int4", 0.35)]
    public void ReducedPrecisionStaysWithinItsTolerance(string family, string dtype, double tolerance)
    {
        // Tolerance: the root-mean-square logit error over the logits' own spread (standard deviation), at the worst position.
        // Unrelated logits of the same spread would score about 1.4.
        var spec = Small(family);
        var checkpoint = Write(spec, seed: 11);
        var built = Path.Combine(_out, dtype);
        DecoderModelBuilder.Convert(checkpoint, built, new ModelBuilderOptions
        {
            Float16Weights = dtype == "fp16",
            Quantization = dtype == "fp16" ? null : WeightQuantization.Parse(dtype),
        });
        var config = DecoderConfig.Load(checkpoint);
        int[] ids = [5, 299, 17, 0, 128, 64, 3, 250, 91, 12];
        var expected = ReferenceDecoder.Forward(config, Expected(spec, seed: 11), ids);
        using var model = LanguageModel.Load(built, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        var all = new float[ids.Length * config.VocabularySize];
        using (var session = model.CreateSession())
        {
            session.AppendWithAllLogits(ids, all, CancellationToken.None);
        }

        var worst = 0.0;
        for (var t = 0; t < ids.Length; t++)
        {
            var row = expected[t];
            var mean = row.Average();
            var spread = Math.Sqrt(row.Average(v => (v - mean) * (v - mean)));
            var actual = all.AsSpan(t * config.VocabularySize, config.VocabularySize);
            var squared = 0.0;
            for (var v = 0; v < row.Length; v++) squared += (actual[v] - row[v]) * (double)(actual[v] - row[v]);
            worst = Math.Max(worst, Math.Sqrt(squared / row.Length) / spread);
        }

        Assert.True(worst <= tolerance, $"{family} {dtype}: worst logit error {worst:F4} of the logits' spread (tolerance {tolerance})");
        Assert.True(dtype == "fp16" || worst > tolerance / 20, $"{family} {dtype}: error {worst:G3} is too small for quantized weights to have been used");
    }

    [Theory]
    [InlineData("int4")]
    [InlineData("int8")]
    public void AQuantizedTiedEmbeddingIsStoredOnceAndSharedWithTheHead(string dtype)
    {
        var spec = Small("llama-3.2-1b");
        var checkpoint = Write(spec, seed: 3);
        var built = Path.Combine(_out, dtype);
        DecoderModelBuilder.Convert(checkpoint, built, new ModelBuilderOptions { Quantization = WeightQuantization.Parse(dtype), ExternalDataThreshold = 0 });
        var file = OnnxModelFile.Read(Path.Combine(built, "model.onnx"));
        Assert.DoesNotContain(file.Initializers.Values, i => i.DataType is 1 or 10 && i.Dims.SequenceEqual([spec.Vocab, spec.Hidden]));
        var gather = Assert.Single(file.Nodes, n => n.OpType == "GatherBlockQuantized");
        var head = Assert.Single(file.Nodes, n => n.OpType == "MatMulNBits" && n.Outputs.Contains("logits"));
        Assert.Equal(head.Inputs[1], gather.Inputs[0]);
        Assert.Equal(["input_ids"], gather.Inputs.Skip(1).Take(1));

        // Every weight is in the external data at a 64-byte (or, from 1 MiB, 64 KiB) aligned offset.
        var external = file.Initializers.Values.Where(i => i.ExternalFile is not null).ToList();
        Assert.Contains(external, i => i.Name == head.Inputs[1]);
        Assert.All(external, i => Assert.Equal(0, i.ExternalOffset % (i.ByteCount >= ExternalDataWriter.LargeTensorBytes ? ExternalDataWriter.LargeAlignment : 64)));
    }

    [Fact]
    public void TheExternalDataDecisionCountsTheWholeFile()
    {
        // Weights alone fit under a threshold one byte below the inline file's size; the graph around them does not.
        var spec = Small("qwen2.5-0.5b");
        var checkpoint = Write(spec, seed: 5);
        var inline = Path.Combine(_out, "inline");
        DecoderModelBuilder.Convert(checkpoint, inline);
        var size = new FileInfo(Path.Combine(inline, "model.onnx")).Length;
        Assert.False(File.Exists(Path.Combine(inline, "model.onnx.data")), "a small model stays in one file by default");

        var external = Path.Combine(_out, "external");
        DecoderModelBuilder.Convert(checkpoint, external, new ModelBuilderOptions { ExternalDataThreshold = size - 1 });
        Assert.True(File.Exists(Path.Combine(external, "model.onnx.data")), "a file over the threshold moves its weights out");
        Assert.True(new FileInfo(Path.Combine(external, "model.onnx")).Length < size / 4);
        BuiltGraphTests.AssertMatchesReference(external, DecoderConfig.Load(checkpoint), Expected(spec, seed: 5), [1, 2, 3, 299, 150]);
    }

    [Fact]
    public void LargeTensorsStartOnTheMappingGranularity()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_out, "data")).FullName;
        using var writer = new ExternalDataWriter(folder, "w.data", chunkBytes: 3 << 20);
        var small = writer.Write(new byte[100]);
        var large = writer.Write(new byte[(int)ExternalDataWriter.LargeTensorBytes + 5]);
        var after = writer.Write(new byte[10]);
        var next = writer.Write(new byte[2 << 20]); // would pass the 3 MiB chunk: starts w.data_1
        Assert.Equal(("w.data", 0L), (small.File, small.Offset));
        Assert.Equal(("w.data", ExternalDataWriter.LargeAlignment), (large.File, large.Offset));
        Assert.Equal(0, after.Offset % 64);
        Assert.True(after.Offset >= large.Offset + large.Length);
        Assert.Equal(("w.data_1", 0L), (next.File, next.Offset));
        Assert.Equal(new byte[10], writer.Read(after));
    }
}
