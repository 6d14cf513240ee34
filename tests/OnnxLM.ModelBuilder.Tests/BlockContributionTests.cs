using OnnxLM.Explain;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>
/// The explain block views on graphs built from random weights, against the naive reference forward pass: the norms of
/// what each attention and MLP block adds to the residual stream, and the logits with an MLP or a head zeroed.
/// </summary>
public sealed class BlockContributionTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("onnxlm-blocks-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    public static TheoryData<string, int, int, int, int> Configs => new()
    {
        // type, hidden, heads, kv heads, head dim
        { "llama", 32, 4, 2, 8 },
        { "gpt2", 24, 3, 3, 8 },
    };

    private (DecoderConfig Config, RandomCheckpoint Weights) Build(string type, int hidden, int heads, int kvHeads, int headDim)
    {
        var config = new DecoderConfig
        {
            ModelType = type, HiddenSize = hidden, IntermediateSize = (2 * hidden) + 6, AttentionHeadCount = heads, KeyValueHeadCount = kvHeads,
            HeadSize = headDim, LayerCount = 3, VocabularySize = 61, MaxPositions = 32, NormEpsilon = 1e-5f, TieWordEmbeddings = type == "gpt2",
            BosTokenId = 0, EosTokenIds = [1],
        };
        var weights = RandomCheckpoint.For(config, seed: hidden + heads);
        DecoderModelBuilder.Build(config, weights, _out);
        return (config, weights);
    }

    private static readonly int[] Ids = [3, 17, 5, 60, 42, 9, 0, 11];

    [Theory]
    [MemberData(nameof(Configs))]
    public void BranchNormsEqualTheReferencePass(string type, int hidden, int heads, int kvHeads, int headDim)
    {
        var (config, weights) = Build(type, hidden, heads, kvHeads, headDim);
        var trace = new ReferenceTrace();
        ReferenceDecoder.Forward(config, weights, Ids, trace: trace);
        using var model = LanguageModel.Load(_out, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var explain = model.Explain();
        var view = explain.Contributions(Ids);
        Assert.Equal(config.LayerCount, view.AttentionNorms.Count);
        for (var layer = 0; layer < config.LayerCount; layer++)
        {
            for (var p = 0; p < Ids.Length; p++)
            {
                var attention = Math.Sqrt(trace.Branches[2 * layer][p].Sum(x => x * x));
                var mlp = Math.Sqrt(trace.Branches[(2 * layer) + 1][p].Sum(x => x * x));
                Assert.Equal(attention, view.AttentionNorms[layer][p], 1e-4 * Math.Max(1, attention));
                Assert.Equal(mlp, view.MlpNorms[layer][p], 1e-4 * Math.Max(1, mlp));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void ZeroingAnMlpOrAHeadEqualsTheReferencePassWithoutIt(string type, int hidden, int heads, int kvHeads, int headDim)
    {
        var (config, weights) = Build(type, hidden, heads, kvHeads, headDim);
        using var model = LanguageModel.Load(_out, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var explain = model.Explain();
        var plain = ReferenceDecoder.Forward(config, weights, Ids)[^1];
        foreach (var (layer, head) in new (int, int?)[] { (1, null), (0, null), (2, 1), (0, heads - 1) })
        {
            var expected = ReferenceDecoder.Forward(config, weights, Ids, trace: head is { } h
                ? new ReferenceTrace { ZeroHead = (layer, h) }
                : new ReferenceTrace { ZeroMlp = [layer] })[^1];
            Assert.True(SharedCheckpointConversionTests.MaxAbsDiff(plain, expected) > 1e-3f, $"zeroing layer {layer} head {head} must change the logits, or this test could not tell");
            var actual = explain.AblatedLogits(Ids, layer, head);
            var diff = SharedCheckpointConversionTests.MaxAbsDiff(actual, expected);
            Assert.True(diff <= 1e-4f, $"{type} layer {layer} head {head}: max abs diff {diff}");
        }
    }
}
