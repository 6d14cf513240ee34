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

        var ids = new[] { 3, 17, 5, vocab - 1, 42 % vocab, 9, 0, 11, 23, 7 };
        var expected = ReferenceDecoder.Forward(config, weights, ids);

        using var model = LanguageModel.Load(_out, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        Assert.Equal((2, heads, kvHeads, headDim, vocab), (model.Info.LayerCount, model.Info.AttentionHeadCount, model.Info.KeyValueHeadCount, model.Info.HeadSize, model.Info.VocabularySize));
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
    public void Float16WeightsStayCloseAndAttentionsAreExported()
    {
        var config = new DecoderConfig
        {
            ModelType = "llama", HiddenSize = 32, IntermediateSize = 48, AttentionHeadCount = 4, KeyValueHeadCount = 2, HeadSize = 8,
            LayerCount = 2, VocabularySize = 61, MaxPositions = 32, BosTokenId = 0, EosTokenIds = [1],
        };
        var weights = RandomCheckpoint.For(config, seed: 5);
        DecoderModelBuilder.Build(config, weights, _out, new ModelBuilderOptions { Float16Weights = true, OutputAttentions = true });
        var ids = new[] { 4, 8, 15, 16, 23, 42 };
        var expected = ReferenceDecoder.Forward(config, weights, ids);

        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(Path.Combine(_out, "model.onnx"));
        Assert.Contains("attentions.1", session.OutputMetadata.Keys);
        using var model = LanguageModel.Load(_out, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var s = model.CreateSession();
        s.Append(ids);
        // fp16 rounding of weights (relative 2^-11) bounds the drift; the reference uses the unrounded weights.
        Assert.True(SharedCheckpointConversionTests.MaxAbsDiff(s.NextTokenLogits, expected[^1]) < 0.05f);
        Assert.Equal(SharedCheckpointConversionTests.ArgMax(expected[^1]), SharedCheckpointConversionTests.ArgMax(s.NextTokenLogits));
    }
}
