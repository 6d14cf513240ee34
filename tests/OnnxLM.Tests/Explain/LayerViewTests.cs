using System.Text.Json.Nodes;
using OnnxLM.Explain;

namespace OnnxLM.Tests;

/// <summary>
/// The layer views (logit lens, heads, query·key) on kjv-tiny and on the shared models, against independent references:
/// the model's own logits, the same checkpoint rebuilt with fewer layers, the attention probabilities, and q·k from the graph's q and k.
/// </summary>
public sealed class LayerViewTests
{
    private const string Text = "And God said, Let there be light: and there was light.";

    /// <summary>softmax(logits) after each prefix of <paramref name="ids"/>, from the plain generation path.</summary>
    private static double[][] ModelProbabilities(LanguageModel model, int[] ids)
    {
        using var session = model.CreateSession(ids.Length + 1);
        var result = new double[ids.Length][];
        for (var p = 0; p < ids.Length; p++)
        {
            session.Append([ids[p]]);
            var logits = session.NextTokenLogits.ToArray();
            var max = logits.Max();
            var exp = logits.Select(l => Math.Exp(l - max)).ToArray();
            var sum = exp.Sum();
            result[p] = [.. exp.Select(e => e / sum)];
        }

        return result;
    }

    private static void AssertRowMatches(IReadOnlyList<LensCell> row, double[][] expected, string what)
    {
        for (var p = 0; p < row.Count; p++)
        {
            var best = Array.IndexOf(expected[p], expected[p].Max());
            Assert.Equal(best, row[p].Top[0].Id);
            foreach (var t in row[p].Top) Assert.True(Math.Abs(expected[p][t.Id] - t.Probability) < 1e-4, $"{what}, position {p}, token {t.Id}: {t.Probability} vs {expected[p][t.Id]}");
        }
    }

    private static async Task LastLayerIsTheModelsPrediction(LanguageModel model)
    {
        using var explain = model.Explain();
        var lens = await explain.LensAsync(Text, top: 10);
        var ids = model.Tokenizer.EncodeForModel(Text, null);
        Assert.Equal(model.Info.LayerCount + 1, lens.Layers.Count);
        Assert.Equal(ids.Length, lens.Tokens.Count);
        var expected = ModelProbabilities(model, ids);
        AssertRowMatches(lens.Layers[^1], expected, "last layer");
        for (var p = 0; p < ids.Length; p++)
        {
            Assert.Equal(lens.Final[p].Id, lens.Layers[^1][p].Top[0].Id);
            Assert.Equal(1, lens.Layers[^1][p].FinalTokenRank);
            Assert.True(Math.Abs(expected[p][lens.Final[p].Id] - lens.Final[p].Probability) < 1e-4);
            foreach (var row in lens.Layers)
            {
                Assert.InRange(row[p].FinalTokenProbability, 0, 1);
                var shown = row[p].Top.Select(t => t.Id).ToList().IndexOf(lens.Final[p].Id);
                if (shown >= 0)
                {
                    Assert.Equal(row[p].Top[shown].Probability, row[p].FinalTokenProbability, 12);
                    Assert.Equal(shown + 1, row[p].FinalTokenRank);
                }
                else
                {
                    Assert.True(row[p].FinalTokenRank > row[p].Top.Count);
                }
            }
        }
    }

    [Fact]
    public async Task LensLastLayerEqualsKjvTinysLogits()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        await LastLayerIsTheModelsPrediction(model);
    }

    [SharedModelFact("torch-llama-fp32")]
    public async Task LensLastLayerEqualsTheTorchExportsLogits()
    {
        using var model = LanguageModel.Load(TestPaths.SharedModel("torch-llama-fp32"));
        await LastLayerIsTheModelsPrediction(model);
    }

    [SharedModelFact("tiny-phi3-gqa-fp16")]
    public async Task LensWorksOnAnAttentionOnlyFloat16GraphWithoutANorm()
    {
        using var model = LanguageModel.Load(TestPaths.SharedModel("tiny-phi3-gqa-fp16"));
        using var explain = model.Explain();
        var lens = await explain.LensAsync("hello world", top: 5);
        var expected = ModelProbabilities(model, model.Tokenizer.EncodeForModel("hello world", null));
        Assert.Equal(2, lens.Layers.Count);
        // float16 logits: the graph rounds them to 11 bits, the lens works from the float16 hidden state in float32.
        for (var p = 0; p < expected.Length; p++)
        {
            foreach (var t in lens.Layers[^1][p].Top) Assert.True(Math.Abs(expected[p][t.Id] - t.Probability) < 2e-3, $"position {p}, token {t.Id}: {t.Probability} vs {expected[p][t.Id]}");
        }

        await Assert.ThrowsAsync<NotSupportedException>(() => explain.QueryKeyAsync("hello world", 0));
    }

    /// <summary>
    /// Layer l of the lens on the full model equals the final prediction of the same checkpoint converted with only l layers:
    /// an independent graph (our builder's) for the hidden state after layer l, norm and unembedding included.
    /// </summary>
    private static async Task IntermediateLayersEqualTruncatedModels(string fullModel, string checkpoint, int[] layers)
    {
        using var model = LanguageModel.Load(fullModel);
        using var explain = model.Explain();
        var lens = await explain.LensAsync(Text, top: 10);
        var ids = model.Tokenizer.EncodeForModel(Text, null);
        var root = Path.Combine(Path.GetTempPath(), $"onnxlm-lens-{Guid.NewGuid():N}");
        try
        {
            foreach (var count in layers)
            {
                var source = Path.Combine(root, $"source{count}");
                Directory.CreateDirectory(source);
                foreach (var file in Directory.GetFiles(checkpoint)) File.Copy(file, Path.Combine(source, Path.GetFileName(file)));
                var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!;
                config["num_hidden_layers"] = count;
                File.WriteAllText(Path.Combine(source, "config.json"), config.ToJsonString());
                var built = Path.Combine(root, $"built{count}");
                OnnxLM.ModelBuilder.DecoderModelBuilder.Convert(source, built);
                using var truncated = LanguageModel.Load(built);
                AssertRowMatches(lens.Layers[count], ModelProbabilities(truncated, ids), $"layer {count}");
            }
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public Task KjvTinysLensLayersEqualTheModelCutAfterThem() =>
        IntermediateLayersEqualTruncatedModels(TestPaths.RepoModel("kjv-tiny"), TestPaths.RepoModel("kjv-tiny"), [1, 4]);

    [SharedModelFact("torch-llama-fp32", "torch-llama-fp32-hf")]
    public Task TorchExportsLensLayersEqualTheCheckpointCutAfterThem() =>
        IntermediateLayersEqualTruncatedModels(TestPaths.SharedModel("torch-llama-fp32"), TestPaths.SharedModel("torch-llama-fp32-hf"), [1, 2, 3]);

    private static async Task QueryKeyMatchesAttentionAndTheGraphsQAndK(LanguageModel model, int headSize)
    {
        using var explain = model.Explain();
        var ids = model.Tokenizer.EncodeForModel(Text, null);
        var n = ids.Length;
        var attention = await explain.AttentionAsync(Text);
        var graph = explain.LayerGraph();
        Assert.Null(graph.AttentionProblem);
        Assert.Equal(model.Info.LayerCount, graph.Attention.Count);
        using var probe = explain.Probe([.. graph.Attention.SelectMany(a => new[] { a.Query, a.KeyTransposed })]);
        var qk = probe.Run(ids, [.. graph.Attention.SelectMany(a => new[] { a.Query, a.KeyTransposed })], CancellationToken.None);
        var heads = model.Info.AttentionHeadCount;
        foreach (var layer in new[] { 0, model.Info.LayerCount - 1 })
        {
            foreach (var query in new[] { n / 2, n - 1 })
            {
                var scores = await explain.QueryKeyAsync(Text, layer, query);
                Assert.Equal(1 / Math.Sqrt(headSize), scores.Scale, 6);
                Assert.Equal((layer, query, n), (scores.Layer, scores.Query, scores.Tokens.Count));
                for (var k = 0; k < n; k++)
                {
                    if (k <= query) Assert.Equal(0f, scores.Mask[k]!.Value, 3);
                    else Assert.Null(scores.Mask[k]);
                }

                var (q, qShape) = qk[2 * layer];
                var (kt, ktShape) = qk[(2 * layer) + 1];
                var d = (int)qShape[^1];
                Assert.Equal(headSize, d);
                Assert.Equal(heads, qShape[1..^2].Aggregate(1L, (a, b) => a * b));
                // kᵀ holds one matrix per kv head when the exporter broadcasts it over the query heads ([1, kv, 1, d, n]).
                var keyHeads = (int)ktShape[1..^2].Aggregate(1L, (a, b) => a * b);
                for (var h = 0; h < heads; h++)
                {
                    // q [1, heads, n, d] · kᵀ [1, key heads, d, n], query head h reading key head h / (heads / key heads), summed here in double.
                    var kh = h / (heads / keyHeads);
                    for (var k = 0; k < n; k++)
                    {
                        double dot = 0;
                        for (var e = 0; e < d; e++) dot += q[(((h * n) + query) * d) + e] * kt[(((kh * d) + e) * n) + k];
                        Assert.True(Math.Abs(dot - scores.Raw[h][k]) < 1e-3 * Math.Max(1, Math.Abs(dot)), $"layer {layer} head {h} q {query} k {k}: {scores.Raw[h][k]} vs {dot}");
                        Assert.True(Math.Abs((scores.Raw[h][k] * scores.Scale) - scores.Scaled[h][k]) < 1e-4);
                        Assert.True(Math.Abs(attention[layer, h, query, k] - scores.Weights[h][k]) < 1e-5);
                    }

                    // softmax(scaled + mask) over the visible keys, here.
                    var visible = Enumerable.Range(0, query + 1).Select(k => (double)scores.Scaled[h][k]).ToArray();
                    var max = visible.Max();
                    var sum = visible.Sum(s => Math.Exp(s - max));
                    for (var k = 0; k <= query; k++) Assert.True(Math.Abs((Math.Exp(visible[k] - max) / sum) - scores.Weights[h][k]) < 1e-5);
                }

            }
        }
    }

    [Fact]
    public async Task KjvTinysQueryKeyScoresMatchItsAttentionAndQK()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        await QueryKeyMatchesAttentionAndTheGraphsQAndK(model, 32);
    }

    [SharedModelFact("torch-llama-fp32")]
    public async Task TorchExportsQueryKeyScoresMatchItsAttentionAndQK()
    {
        using var model = LanguageModel.Load(TestPaths.SharedModel("torch-llama-fp32"));
        await QueryKeyMatchesAttentionAndTheGraphsQAndK(model, 32);
    }

    [Fact]
    public async Task HeadSummariesAreRecomputedFromTheAttention()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        using var explain = model.Explain();
        const string text = "the LORD said unto the LORD";
        var ids = model.Tokenizer.EncodeForModel(text, null);
        var heads = await explain.HeadsAsync(text);
        var attention = await explain.AttentionAsync(text);
        var n = ids.Length;
        Assert.Equal(model.Info.LayerCount * model.Info.AttentionHeadCount, heads.Heads.Count);
        foreach (var s in heads.Heads)
        {
            var rows = attention.Head(s.Layer, s.Head);
            var previous = Enumerable.Range(1, n - 1).Average(q => (double)rows[q][q - 1]);
            var first = Enumerable.Range(1, n - 1).Average(q => (double)rows[q][0]);
            var entropy = Enumerable.Range(1, n - 1).Average(q => -rows[q].Where(w => w > 0).Sum(w => w * Math.Log(w)) / Math.Log(2));
            var repeated = Enumerable.Range(1, n - 1).Where(q => ids[..q].Contains(ids[q])).ToList();
            Assert.NotEmpty(repeated); // " the" and " LORD" come back
            var same = repeated.Average(q => Enumerable.Range(0, q).Where(k => ids[k] == ids[q]).Sum(k => (double)rows[q][k]));
            Assert.True(Math.Abs(previous - s.PreviousToken) < 1e-6);
            Assert.True(Math.Abs(first - s.FirstToken) < 1e-6);
            Assert.True(Math.Abs(entropy - s.EntropyBits) < 1e-5);
            Assert.True(Math.Abs(same - s.SameTokenEarlier!.Value) < 1e-6);
        }

        await Assert.ThrowsAsync<ArgumentException>(() => explain.HeadsAsync(""));
    }

    [Fact]
    public async Task BadArgumentsAreNamed()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        using var explain = model.Explain();
        var layer = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => explain.QueryKeyAsync(Text, 8));
        Assert.Equal("layer", layer.ParamName);
        var query = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => explain.QueryKeyAsync("In the", 0, 5));
        Assert.Equal("query", query.ParamName);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => explain.LensAsync(Text, top: 0));
        var tooLong = await Assert.ThrowsAsync<ArgumentException>(() => explain.LensAsync(string.Concat(Enumerable.Repeat("And God said. ", 200))));
        Assert.Contains($"1 to {Math.Min(512, model.Info.ContextLength - 1)}", tooLong.Message, StringComparison.Ordinal);
    }

    [SharedModelTheory]
    [InlineData("tiny-gpt2-fp32", "EmbedLayerNormalization", "Attention")]
    [InlineData("tiny-llama-fp16", "SkipSimplifiedLayerNormalization", "MultiHeadAttention")]
    public async Task FusedGraphsSayWhyTheyCannotBeSeenInside(string name, string fusedNorm, string fusedAttention)
    {
        if (!TestPaths.HasSharedModel(name)) return; // the theory's attribute only checks the shared folder
        using var model = LanguageModel.Load(TestPaths.SharedModel(name));
        using var explain = model.Explain();
        var lens = await Assert.ThrowsAsync<NotSupportedException>(() => explain.LensAsync("hello world"));
        Assert.Contains(fusedNorm, lens.Message, StringComparison.Ordinal);
        Assert.Contains("onnxlm convert", lens.Message, StringComparison.Ordinal);
        var qk = await Assert.ThrowsAsync<NotSupportedException>(() => explain.QueryKeyAsync("hello world", 0));
        Assert.Contains(fusedAttention, qk.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<NotSupportedException>(() => explain.HeadsAsync("hello world"));
    }
}
