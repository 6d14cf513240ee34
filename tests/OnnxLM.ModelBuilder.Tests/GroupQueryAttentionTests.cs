using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxLM.Tests;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>
/// Graphs written with <see cref="AttentionOperator.GroupQuery"/> (one com.microsoft.GroupQueryAttention node per layer)
/// compute what the standard-operator graphs of the same weights compute, and what the naive reference forward pass
/// computes: a prefill, cached single-token steps, several tokens appended after a past and after a rewind, with the
/// cache shared between past and present (OnnxLM's CPU default) and with separate buffers; and OnnxLM detects the
/// shared-buffer pattern in them.
/// </summary>
public sealed class GroupQueryAttentionTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("onnxlm-gqa-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    private static readonly LanguageModelOptions Cpu = new() { ExecutionProvider = ExecutionProvider.Cpu };

    public static TheoryData<string, int, int, int, int, int, bool, bool> Configs => new()
    {
        // type, hidden, heads, kv heads, head dim, vocab, tied, attention bias
        { "llama", 32, 4, 2, 16, 97, false, false },   // 2 query heads per kv head
        { "llama", 48, 4, 1, 24, 101, true, false },   // 4 query heads per kv head, tied embeddings
        { "llama", 40, 2, 2, 24, 53, false, true },    // one query head per kv head, q/k/v biases (Qwen2 style)
        { "gpt2", 24, 3, 3, 8, 89, true, false },
    };

    private static DecoderConfig Config(string type, int hidden, int heads, int kvHeads, int headDim, int vocab, bool tied, bool bias) => new()
    {
        ModelType = type, HiddenSize = hidden, IntermediateSize = 2 * hidden + 6, AttentionHeadCount = heads, KeyValueHeadCount = kvHeads,
        HeadSize = headDim, LayerCount = 2, VocabularySize = vocab, MaxPositions = 64, NormEpsilon = 1e-5f, TieWordEmbeddings = tied,
        AttentionBias = bias, BosTokenId = 0, EosTokenIds = [1],
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void GroupQueryGraphMatchesTheReferenceAndTheStandardGraph(string type, int hidden, int heads, int kvHeads, int headDim, int vocab, bool tied, bool bias)
    {
        var config = Config(type, hidden, heads, kvHeads, headDim, vocab, tied, bias);
        var weights = RandomCheckpoint.For(config, seed: hidden * 31 + vocab);
        var standard = Path.Combine(_out, "standard");
        var gqa = Path.Combine(_out, "gqa");
        DecoderModelBuilder.Build(config, weights, standard);
        DecoderModelBuilder.Build(config, weights, gqa, new ModelBuilderOptions { Attention = AttentionOperator.GroupQuery });

        // The graph: one GroupQueryAttention per layer, wired straight to the cache inputs/outputs; no Softmax or Concat left.
        var file = OnnxModelFile.Read(Path.Combine(gqa, "model.onnx"));
        var nodes = file.Nodes.Where(n => n.OpType == "GroupQueryAttention").ToList();
        Assert.Equal(config.LayerCount, nodes.Count);
        for (var layer = 0; layer < config.LayerCount; layer++)
        {
            Assert.Equal([$"past_key_values.{layer}.key", $"past_key_values.{layer}.value"], nodes[layer].Inputs.Skip(3).Take(2));
            Assert.Equal([$"present.{layer}.key", $"present.{layer}.value"], nodes[layer].Outputs.Skip(1));
        }

        Assert.DoesNotContain(file.Nodes, n => n.OpType == "Softmax");

        // Llama heads that are a multiple of 16 are rotated inside the operator (do_rotary, the graph's cos/sin tables as its
        // caches): no rotate-half operators remain. Other head sizes, which its rotary refuses, keep the graph's own.
        var fused = type == "llama" && headDim % 16 == 0;
        Assert.All(nodes, n => Assert.Equal(fused ? 1 : 0, n.IntAttributes.GetValueOrDefault("do_rotary")));
        Assert.All(nodes, n => Assert.Equal(fused ? 9 : 7, n.Inputs.Count));
        Assert.Equal(!fused && type == "llama", file.Nodes.Any(n => n.OpType == "Neg"));

        // Through OnnxLM's runtime (shared buffer, the CPU default): prefill, cached steps, against the reference.
        int[] ids = [3, 17, 5, vocab - 1, 42 % vocab, 9, 0, 11, 23, 7, 2, 30, 19, 4, 8, 27, 13, 6, 21, 10];
        BuiltGraphTests.AssertMatchesReference(gqa, config, weights, ids);
        using var model = LanguageModel.Load(gqa, Cpu);
        Assert.True(model.Runtime.Graph.SharesCacheBuffer, "a GroupQueryAttention build must be detected as sharing its past/present buffer");
        using (var standardModel = LanguageModel.Load(standard, Cpu))
        {
            Assert.False(standardModel.Runtime.Graph.SharesCacheBuffer);
            AssertAppendsMatch(standardModel, model, ids);
        }

        // Separate past and present buffers (how ONNX Runtime GenAI without sharing, or CUDA, runs it) give the same logits.
        using var unshared = LanguageModel.Load(gqa, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, ShareCacheBuffer = false });
        Assert.False(unshared.Runtime.Graph.SharesCacheBuffer);
        AssertAppendsMatch(model, unshared, ids);

        using var genai = JsonDocument.Parse(File.ReadAllText(Path.Combine(gqa, "genai_config.json")));
        Assert.True(genai.RootElement.GetProperty("search").GetProperty("past_present_share_buffer").GetBoolean());
        using var standardGenai = JsonDocument.Parse(File.ReadAllText(Path.Combine(standard, "genai_config.json")));
        Assert.False(standardGenai.RootElement.GetProperty("search").GetProperty("past_present_share_buffer").GetBoolean());
    }

    [Fact]
    public void Float16WeightsGiveTheStandardGraphsLogits()
    {
        // fp16 storage, float32 computation: both graphs read the same rounded weights, so they agree as closely as fp32.
        var config = Config("llama", 64, 4, 2, 16, 71, false, false);
        var weights = RandomCheckpoint.For(config, seed: 8);
        var standard = Path.Combine(_out, "standard");
        var gqa = Path.Combine(_out, "gqa");
        DecoderModelBuilder.Build(config, weights, standard, new ModelBuilderOptions { Float16Weights = true });
        DecoderModelBuilder.Build(config, weights, gqa, new ModelBuilderOptions { Float16Weights = true, Attention = AttentionOperator.GroupQuery });
        using var a = LanguageModel.Load(standard, Cpu);
        using var b = LanguageModel.Load(gqa, Cpu);
        Assert.Equal(("float16", "float16"), (a.Info.WeightType, b.Info.WeightType));
        Assert.True(b.Runtime.Graph.SharesCacheBuffer);
        AssertAppendsMatch(a, b, [5, 9, 2, 66, 31, 8, 40, 12, 3, 27, 19, 50, 7, 44, 1, 60, 33, 14]);
    }

    [Fact]
    public void QuantizedGroupQueryGraphGivesTheQuantizedStandardGraphsLogits()
    {
        var config = Config("llama", 64, 4, 2, 16, 71, false, false);
        var weights = RandomCheckpoint.For(config, seed: 12);
        var quantization = new WeightQuantization { Bits = 4, AccuracyLevel = 1 };
        var standard = Path.Combine(_out, "standard");
        var gqa = Path.Combine(_out, "gqa");
        DecoderModelBuilder.Build(config, weights, standard, new ModelBuilderOptions { Quantization = quantization });
        DecoderModelBuilder.Build(config, weights, gqa, new ModelBuilderOptions { Quantization = quantization, Attention = AttentionOperator.GroupQuery });
        using var a = LanguageModel.Load(standard, Cpu);
        using var b = LanguageModel.Load(gqa, Cpu);
        Assert.True(b.Runtime.Graph.SharesCacheBuffer);
        AssertAppendsMatch(a, b, [5, 9, 2, 66, 31, 8, 40, 12, 3, 27, 19, 50, 7, 44, 1, 60, 33]);
    }

    [Fact]
    public void RightPaddedBatchMatchesEachSequenceAlone()
    {
        // The operator reads each row's length from the attention mask (ones − 1), so right padding is exact for real positions.
        var config = Config("llama", 32, 4, 2, 16, 97, false, false);
        var weights = RandomCheckpoint.For(config, seed: 4);
        DecoderModelBuilder.Build(config, weights, _out, new ModelBuilderOptions { Attention = AttentionOperator.GroupQuery });
        int[][] sequences = [[3, 17, 5, 96, 42, 9, 0], [11, 23, 7, 2]];
        var width = sequences.Max(s => s.Length);
        var ids = new long[2 * width];
        var mask = new long[2 * width];
        var positions = new long[2 * width];
        for (var b = 0; b < 2; b++)
            for (var t = 0; t < width; t++)
            {
                var real = t < sequences[b].Length;
                (ids[b * width + t], mask[b * width + t], positions[b * width + t]) = (real ? sequences[b][t] : 0, real ? 1 : 0, t);
            }

        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids, [2, width])),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask, [2, width])),
            NamedOnnxValue.CreateFromTensor("position_ids", new DenseTensor<long>(positions, [2, width])),
        };
        for (var layer = 0; layer < config.LayerCount; layer++)
            foreach (var part in new[] { "key", "value" })
                inputs.Add(NamedOnnxValue.CreateFromTensor($"past_key_values.{layer}.{part}", new DenseTensor<float>([2, config.KeyValueHeadCount, 0, config.HeadSize])));

        using var session = new InferenceSession(Path.Combine(_out, "model.onnx"));
        using var outputs = session.Run(inputs);
        var logits = outputs.Single(o => o.Name == "logits").AsTensor<float>().ToArray();
        for (var b = 0; b < 2; b++)
        {
            var expected = ReferenceDecoder.Forward(config, weights, sequences[b]);
            for (var t = 0; t < sequences[b].Length; t++)
            {
                var diff = SharedCheckpointConversionTests.MaxAbsDiff(logits.AsSpan((b * width + t) * config.VocabularySize, config.VocabularySize), expected[t]);
                Assert.True(diff <= 1e-4f, $"row {b} position {t}: max abs diff {diff}");
            }
        }
    }

    [Fact]
    public async Task KjvTinyRebuiltWithGroupQueryAttentionDecodesLikeTheShippedModel()
    {
        // The route build/train-default-model/gqa.sh takes: the shipped fp16 graph read back as a checkpoint.
        DecoderModelBuilder.Convert(TestPaths.RepoModel("kjv-tiny"), _out, new ModelBuilderOptions
        {
            Float16Weights = true, ContextLength = 256, Attention = AttentionOperator.GroupQuery,
        });
        using var shipped = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), Cpu);
        using var gqa = LanguageModel.Load(_out, Cpu);
        Assert.True(gqa.Runtime.Graph.SharesCacheBuffer);
        Assert.False(shipped.Runtime.Graph.SharesCacheBuffer);
        AssertAppendsMatch(shipped, gqa, [.. shipped.Tokenizer.Encode("In the beginning God created the heaven and the earth. And the earth was without form")]);

        const string prompt = "And the LORD said unto Moses,";
        var greedy = new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [] };
        var expected = await shipped.GenerateAsync(prompt, greedy);
        var actual = await gqa.GenerateAsync(prompt, greedy);
        Assert.Equal(expected.TokenIds, actual.TokenIds);
        Assert.Equal(expected.Text, actual.Text);
    }

    [Fact]
    public void UnsupportedCombinationsAreTypedErrorsNamingTheProblem()
    {
        var config = Config("llama", 48, 4, 2, 12, 59, false, false);
        var weights = RandomCheckpoint.For(config, seed: 1);
        var e = Assert.Throws<ModelFormatException>(() =>
            DecoderModelBuilder.Build(config, weights, _out, new ModelBuilderOptions { Attention = AttentionOperator.GroupQuery }));
        Assert.Contains("head size that is a multiple of 8", e.Message);
        Assert.Contains("12", e.Message);

        config = Config("llama", 32, 4, 2, 8, 59, false, false);
        var options = Assert.Throws<ArgumentException>(() => DecoderModelBuilder.Build(config, RandomCheckpoint.For(config, 1), _out,
            new ModelBuilderOptions { Attention = AttentionOperator.GroupQuery, OutputAttentions = true }));
        Assert.Contains("OutputAttentions", options.Message);
        Assert.Equal("Attention", Assert.Throws<ArgumentOutOfRangeException>(() => new ModelBuilderOptions { Attention = (AttentionOperator)7 }).ParamName);
    }

    /// <summary>
    /// Both models give the same logits (≤ 1e-4) for a prefill of 5 tokens, three single-token steps, a 6-token append after
    /// that past, a rewind of 4 and a 5-token append of different tokens, then single steps to the end.
    /// </summary>
    internal static void AssertAppendsMatch(LanguageModel expectedModel, LanguageModel actualModel, int[] ids)
    {
        Assert.True(ids.Length >= 16, "the sequence must cover every stage below");
        var vocab = expectedModel.Info.VocabularySize;
        using var expected = expectedModel.CreateSession();
        using var actual = actualModel.CreateSession();
        void Compare(ReadOnlySpan<int> chunk, string what)
        {
            var want = new float[chunk.Length * vocab];
            var got = new float[chunk.Length * vocab];
            expected.AppendWithAllLogits(chunk, want, CancellationToken.None);
            actual.AppendWithAllLogits(chunk, got, CancellationToken.None);
            for (var t = 0; t < chunk.Length; t++)
            {
                var diff = SharedCheckpointConversionTests.MaxAbsDiff(got.AsSpan(t * vocab, vocab), want.AsSpan(t * vocab, vocab));
                Assert.True(diff <= 1e-4f, $"{what}, row {t} of {chunk.Length} (position {expected.Tokens.Length - chunk.Length + t}): max abs diff {diff}");
            }
        }

        Compare(ids.AsSpan(0, 5), "prefill");
        for (var t = 5; t < 8; t++) Compare(ids.AsSpan(t, 1), "cached step");
        Compare(ids.AsSpan(8, 6), "append after a past");
        expected.Rewind(10);
        actual.Rewind(10);
        int[] other = [.. ids.AsSpan(0, 5).ToArray().Reverse()];
        Compare(other, "append after a rewind");
        for (var t = 15; t < ids.Length; t++) Compare(ids.AsSpan(t, 1), "cached step after the rewind");
    }
}
