using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxLM.Tests;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>Graphs built from random weights match the naive reference forward pass, full sequence and step by step through OnnxLM's runtime.</summary>
public sealed class BuiltGraphTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("onnxlm-built-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    public static TheoryData<string, int, int, int, int, int, bool, bool> Configs => new()
    {
        // type, hidden, heads, kv heads, head dim, vocab, tied, attention bias
        { "llama", 32, 4, 2, 16, 97, false, false },   // GQA ratio 2, head_dim 16
        { "llama", 48, 4, 1, 24, 101, true, false },   // GQA ratio 4, head_dim 24, tied embeddings
        { "llama", 40, 2, 2, 24, 53, false, true },    // no GQA, q/k/v biases (Qwen2 style)
        { "gpt2", 24, 3, 3, 8, 89, true, false },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void LogitsMatchReferenceFullSequenceAndStepByStep(string type, int hidden, int heads, int kvHeads, int headDim, int vocab, bool tied, bool bias)
    {
        var config = new DecoderConfig
        {
            ModelType = type, HiddenSize = hidden, IntermediateSize = 2 * hidden + 6, AttentionHeadCount = heads, KeyValueHeadCount = kvHeads,
            HeadSize = headDim, LayerCount = 2, VocabularySize = vocab, MaxPositions = 64, NormEpsilon = 1e-5f, TieWordEmbeddings = tied,
            AttentionBias = bias, BosTokenId = 0, EosTokenIds = [1],
        };
        var weights = RandomCheckpoint.For(config, seed: hidden * 31 + vocab);
        DecoderModelBuilder.Build(config, weights, _out);
        AssertMatchesReference(_out, config, weights, [3, 17, 5, vocab - 1, 42 % vocab, 9, 0, 11, 23, 7]);
    }

    [Theory]
    [InlineData("linear", 2.0)]
    [InlineData("llama3", 8.0)]
    public void RopeScalingMatchesReference(string scaling, double factor)
    {
        // head_dim 16, θ 10,000: pair wavelengths 6.3, 19.9, 62.8, 199, ... tokens. With an original context of 64
        // and llama3's default low/high factors 1 and 4, the first pair is kept, the next two blended, the rest slowed.
        var config = SmallLlama(hidden: 32, intermediate: 40, heads: 2, kvHeads: 1, headDim: 16, vocab: 67, maxPositions: 64) with
        {
            RopeScalingType = scaling, RopeScalingFactor = factor, RopeOriginalMaxPositions = 64,
        };
        var weights = RandomCheckpoint.For(config, seed: 11);
        int[] ids = [5, 9, 2, 66, 31, 8, 40, 12, 3, 27, 19, 50, 7, 44, 1, 60];
        var unscaled = ReferenceDecoder.Forward(config with { RopeScalingType = null }, weights, ids);
        Assert.True(SharedCheckpointConversionTests.MaxAbsDiff(unscaled[^1], ReferenceDecoder.Forward(config, weights, ids)[^1]) > 1e-3f,
            "the scaling must change the logits, or this test could not tell it was ignored");
        DecoderModelBuilder.Build(config, weights, _out);
        AssertMatchesReference(_out, config, weights, ids);
    }

    [Fact]
    public void ShardedCheckpointConvertsWithExternalData()
    {
        var config = SmallLlama(hidden: 32, intermediate: 56, heads: 4, kvHeads: 2, headDim: 8, vocab: 71, maxPositions: 32);
        var weights = RandomCheckpoint.For(config, seed: 3);
        var checkpoint = Directory.CreateDirectory(Path.Combine(_out, "hf")).FullName;
        File.WriteAllText(Path.Combine(checkpoint, "config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model_type"] = "llama", ["hidden_size"] = config.HiddenSize, ["intermediate_size"] = config.IntermediateSize,
            ["num_attention_heads"] = config.AttentionHeadCount, ["num_key_value_heads"] = config.KeyValueHeadCount, ["head_dim"] = config.HeadSize,
            ["num_hidden_layers"] = config.LayerCount, ["vocab_size"] = config.VocabularySize, ["max_position_embeddings"] = config.MaxPositions,
            ["rms_norm_eps"] = config.NormEpsilon, ["rope_theta"] = config.RopeTheta, ["tie_word_embeddings"] = config.TieWordEmbeddings,
            ["bos_token_id"] = 0, ["eos_token_id"] = 1,
        }));
        // Two shards, as Hugging Face writes large checkpoints: tensors split by name, an index mapping each to its file.
        var names = weights.Tensors.Keys.Order(StringComparer.Ordinal).ToArray();
        var map = names.ToDictionary(n => n, n => Array.IndexOf(names, n) < names.Length / 2 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
        foreach (var file in map.Values.Distinct())
        {
            RandomCheckpoint.WriteSafeTensors(Path.Combine(checkpoint, file), weights.Tensors.Where(t => map[t.Key] == file).ToDictionary());
        }

        File.WriteAllText(Path.Combine(checkpoint, "model.safetensors.index.json"), JsonSerializer.Serialize(new { metadata = new { }, weight_map = map }));

        var built = Path.Combine(_out, "onnx");
        DecoderModelBuilder.Convert(checkpoint, built, new ModelBuilderOptions { ExternalDataThreshold = 0 });
        var data = new FileInfo(Path.Combine(built, "model.onnx.data"));
        Assert.True(data.Exists && data.Length > 4 * new FileInfo(Path.Combine(built, "model.onnx")).Length, "weights should live in model.onnx.data");
        AssertMatchesReference(built, config, weights, [2, 70, 13, 4, 29, 0, 51, 8]);
    }

    /// <summary>A two-layer Llama config with BOS 0 and EOS 1.</summary>
    private static DecoderConfig SmallLlama(int hidden, int intermediate, int heads, int kvHeads, int headDim, int vocab, int maxPositions) => new()
    {
        ModelType = "llama", HiddenSize = hidden, IntermediateSize = intermediate, AttentionHeadCount = heads, KeyValueHeadCount = kvHeads,
        HeadSize = headDim, LayerCount = 2, VocabularySize = vocab, MaxPositions = maxPositions, BosTokenId = 0, EosTokenIds = [1],
    };

    /// <summary>The built folder's logits, through OnnxLM's runtime, equal the reference pass: all positions at once and step by step with the cache.</summary>
    internal static void AssertMatchesReference(string folder, DecoderConfig config, RandomCheckpoint weights, int[] ids)
    {
        var type = config.ModelType;
        var vocab = config.VocabularySize;
        var expected = ReferenceDecoder.Forward(config, weights, ids);

        using var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        Assert.Equal((config.LayerCount, config.AttentionHeadCount, config.KeyValueHeadCount, config.HeadSize, vocab),
            (model.Info.LayerCount, model.Info.AttentionHeadCount, model.Info.KeyValueHeadCount, model.Info.HeadSize, model.Info.VocabularySize));
        var all = new float[ids.Length * vocab];
        using (var session = model.CreateSession())
        {
            session.AppendWithAllLogits(ids, all, CancellationToken.None);
        }

        for (var t = 0; t < ids.Length; t++)
        {
            var diff = SharedCheckpointConversionTests.MaxAbsDiff(all.AsSpan(t * vocab, vocab), expected[t]);
            Assert.True(diff <= 1e-4f, $"{type} full sequence position {t}: max abs diff {diff}");
        }

        using var stepped = model.CreateSession();
        stepped.Append(ids.AsSpan(0, 2));
        for (var t = 2; t <= ids.Length; t++)
        {
            var diff = SharedCheckpointConversionTests.MaxAbsDiff(stepped.NextTokenLogits, expected[t - 1]);
            Assert.True(diff <= 1e-4f, $"{type} cached step at position {t - 1}: max abs diff {diff}");
            if (t < ids.Length) stepped.Append(ids[t]);
        }
    }

    [Fact]
    public void AttentionOutputsAreTheReferenceProbabilities()
    {
        var config = SmallLlama(hidden: 48, intermediate: 64, heads: 4, kvHeads: 2, headDim: 12, vocab: 59, maxPositions: 32);
        var weights = RandomCheckpoint.For(config, seed: 21);
        DecoderModelBuilder.Build(config, weights, _out, new ModelBuilderOptions { OutputAttentions = true });
        long[] ids = [7, 3, 58, 21, 0, 14, 33];
        var expected = new List<double[][][]>();
        ReferenceDecoder.Forward(config, weights, ids.Select(i => (int)i).ToArray(), expected);

        // One prompt pass with an empty cache, fed to the graph directly: attentions.N is [batch, heads, query, key].
        using var session = new InferenceSession(Path.Combine(_out, "model.onnx"));
        var t = ids.Length;
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids, [1, t])),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(Enumerable.Repeat(1L, t).ToArray(), [1, t])),
            NamedOnnxValue.CreateFromTensor("position_ids", new DenseTensor<long>(Enumerable.Range(0, t).Select(i => (long)i).ToArray(), [1, t])),
        };
        for (var layer = 0; layer < config.LayerCount; layer++)
        {
            foreach (var part in new[] { "key", "value" })
            {
                inputs.Add(NamedOnnxValue.CreateFromTensor($"past_key_values.{layer}.{part}",
                    new DenseTensor<float>([1, config.KeyValueHeadCount, 0, config.HeadSize])));
            }
        }

        using var outputs = session.Run(inputs);
        for (var layer = 0; layer < config.LayerCount; layer++)
        {
            var actual = outputs.Single(o => o.Name == $"attentions.{layer}").AsTensor<float>();
            Assert.Equal([1, config.AttentionHeadCount, t, t], actual.Dimensions.ToArray());
            for (var head = 0; head < config.AttentionHeadCount; head++)
                for (var query = 0; query < t; query++)
                    for (var key = 0; key < t; key++)
                    {
                        var want = expected[layer][head][query][key];
                        Assert.True(Math.Abs(actual[0, head, query, key] - want) <= 1e-5, $"layer {layer} head {head} query {query} key {key}: {actual[0, head, query, key]} vs {want}");
                    }
        }
    }

    [Fact]
    public async Task ExplainedAttentionOfAPlainGraphIsTheReferenceProbabilities()
    {
        // No attention outputs built in: the explainer adds the softmaxes as outputs itself.
        var config = SmallLlama(hidden: 48, intermediate: 64, heads: 4, kvHeads: 2, headDim: 12, vocab: 59, maxPositions: 32);
        var weights = RandomCheckpoint.For(config, seed: 22);
        DecoderModelBuilder.Build(config, weights, _out);
        int[] ids = [7, 3, 58, 21, 0, 14, 33];
        var expected = new List<double[][][]>();
        ReferenceDecoder.Forward(config, weights, ids, expected);
        using var model = LanguageModel.Load(_out);
        using var explain = model.Explain();
        var map = await explain.AttentionAsync(ids);
        Assert.Equal((config.LayerCount, config.AttentionHeadCount, ids.Length), (map.LayerCount, map.HeadCount, map.Tokens.Count));
        for (var layer = 0; layer < config.LayerCount; layer++)
            for (var head = 0; head < config.AttentionHeadCount; head++)
                for (var query = 0; query < ids.Length; query++)
                    for (var key = 0; key < ids.Length; key++)
                    {
                        Assert.True(Math.Abs(map[layer, head, query, key] - expected[layer][head][query][key]) <= 1e-5,
                            $"layer {layer} head {head} query {query} key {key}: {map[layer, head, query, key]} vs {expected[layer][head][query][key]}");
                    }
    }

    [Fact]
    public void Float16WeightsStayCloseAndAttentionsAreExported()
    {
        var config = SmallLlama(hidden: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8, vocab: 61, maxPositions: 32);
        var weights = RandomCheckpoint.For(config, seed: 5);
        DecoderModelBuilder.Build(config, weights, _out, new ModelBuilderOptions { Float16Weights = true, OutputAttentions = true });
        var ids = new[] { 4, 8, 15, 16, 23, 42 };
        var expected = ReferenceDecoder.Forward(config, weights, ids);

        using var session = new InferenceSession(Path.Combine(_out, "model.onnx"));
        Assert.Contains("attentions.1", session.OutputMetadata.Keys);
        using var model = LanguageModel.Load(_out, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var s = model.CreateSession();
        s.Append(ids);
        // fp16 rounding of weights (relative 2^-11) bounds the drift; the reference uses the unrounded weights.
        Assert.True(SharedCheckpointConversionTests.MaxAbsDiff(s.NextTokenLogits, expected[^1]) < 0.05f);
        Assert.Equal(SharedCheckpointConversionTests.ArgMax(expected[^1]), SharedCheckpointConversionTests.ArgMax(s.NextTokenLogits));
    }
}
