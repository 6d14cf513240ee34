using Microsoft.ML.OnnxRuntime;
using OnnxLM.Explain;

namespace OnnxLM.Tests;

/// <summary>
/// The block views (contributions, ablation, dimensions, cost) on kjv-tiny and the shared models, checked against
/// independent computations: the plain run, the graph's own final residual stream, closed forms, the graph's tensor shapes.
/// </summary>
public sealed class BlockViewTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
    private readonly ModelExplainer _explain;

    public BlockViewTests() => _explain = _model.Explain();

    public void Dispose()
    {
        _explain.Dispose();
        _model.Dispose();
    }

    private int[] Ids(string text) => _model.Tokenizer.Encode(text);

    private static float PlainLogitsDiff(LanguageModel model, ModelExplainer explain, int[] ids)
    {
        using var session = model.CreateSession();
        session.Append(ids);
        var plain = session.NextTokenLogits.ToArray();
        var rewritten = explain.AblatedLogits(ids, null, null);
        Assert.Equal(plain.Length, rewritten.Length);
        return plain.Zip(rewritten, (a, b) => Math.Abs(a - b)).Max();
    }

    private static void AssertBranchesSumToTheFinalStream(ModelExplainer explain, int[] ids)
    {
        var (embedding, attention, mlp, n, hidden) = explain.ResidualTensors(ids);
        var final = explain.FinalResidual(ids);
        Assert.Equal(n * hidden, final.Length);
        for (var i = 0; i < final.Length; i++)
        {
            double sum = embedding[i];
            for (var layer = 0; layer < attention.Length; layer++) sum += attention[layer][i] + mlp[layer][i];
            Assert.True(Math.Abs(sum - final[i]) <= 1e-4 * (1 + Math.Abs(final[i])), $"element {i}: branches sum to {sum}, the graph's stream is {final[i]}");
        }
    }

    [Fact]
    public void AblationWithNothingZeroedEqualsThePlainRun() =>
        Assert.True(PlainLogitsDiff(_model, _explain, Ids("And the LORD spake unto Moses")) <= 1e-5f);

    [Fact]
    public void BranchesPlusTheEmbeddingEqualTheFinalResidualStream() => AssertBranchesSumToTheFinalStream(_explain, Ids("In the beginning God created the heaven"));

    [Fact]
    public async Task ContributionsAreTheNormsOfTheBranchTensors()
    {
        const string Text = "the children of";
        var view = await _explain.ContributionsAsync(Text);
        var ids = Ids(Text);
        var (embedding, attention, mlp, n, hidden) = _explain.ResidualTensors(ids);
        Assert.Equal(ids.Length, view.Tokens.Count);
        Assert.Equal(_model.Info.LayerCount, view.AttentionNorms.Count);
        double Norm(float[] t, int p) => Math.Sqrt(Enumerable.Range(0, hidden).Sum(j => (double)t[(p * hidden) + j] * t[(p * hidden) + j]));
        for (var p = 0; p < n; p++)
        {
            Assert.Equal(Norm(embedding, p), view.EmbeddingNorms[p], 9);
            var stream = new double[hidden];
            for (var j = 0; j < hidden; j++) stream[j] = embedding[(p * hidden) + j];
            for (var layer = 0; layer < attention.Length; layer++)
            {
                Assert.Equal(Norm(attention[layer], p), view.AttentionNorms[layer][p], 9);
                Assert.Equal(Norm(mlp[layer], p), view.MlpNorms[layer][p], 9);
                for (var j = 0; j < hidden; j++) stream[j] += attention[layer][(p * hidden) + j] + mlp[layer][(p * hidden) + j];
                Assert.Equal(Math.Sqrt(stream.Sum(x => x * x)), view.ResidualNorms[layer][p], 3);
            }
        }
    }

    [Fact]
    public async Task ZeroingAnMlpMovesTheChildrenOfIsrael()
    {
        const string Prompt = "the children of";
        var ids = Ids(Prompt);
        foreach (var (layer, head) in new (int, int?)[] { (0, null), (3, 2) })
        {
            var result = await _explain.AblateAsync(Prompt, layer, head, top: 5);
            Assert.Equal(" Israel", result.OriginalTop.Text);
            Assert.Equal(result.Before[0], result.OriginalTop);

            // Independently: softmax of the rewritten graph's logits, and KL(before ‖ after) in bits from the two distributions.
            using var session = _model.CreateSession();
            session.Append(ids);
            var before = Softmax(session.NextTokenLogits.ToArray());
            var after = Softmax(_explain.AblatedLogits(ids, layer, head));
            Assert.Equal(before[result.OriginalTop.Id], result.OriginalTop.Probability, 6);
            Assert.Equal(after[result.OriginalTop.Id], result.OriginalTopProbabilityAfter, 6);
            var kl = before.Select((p, i) => p * Math.Log2(p / after[i])).Sum();
            Assert.Equal(kl, result.KlDivergenceBits, 6);
            Assert.True(kl > 1e-4, $"zeroing layer {layer} head {head} changes the distribution (KL {kl} bits)");
            var expectedAfter = Enumerable.Range(0, after.Length).OrderByDescending(i => after[i]).Take(5).ToArray();
            Assert.Equal(expectedAfter, result.After.Select(t => t.Id));
        }
    }

    [Fact]
    public async Task AblationRejectsBadLayersAndHeads()
    {
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _explain.AblateAsync("the children of", _model.Info.LayerCount));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _explain.AblateAsync("the children of", 0, _model.Info.AttentionHeadCount));
        await Assert.ThrowsAsync<ArgumentException>(() => _explain.AblateAsync("", 0));
    }

    private static double[] Softmax(float[] logits)
    {
        var max = logits.Max();
        var e = logits.Select(x => Math.Exp(x - max)).ToArray();
        var sum = e.Sum();
        return [.. e.Select(x => x / sum)];
    }

    [Fact]
    public void RandomDirectionsMatchTheirClosedFormAndFewFitInThreeDimensions()
    {
        const int Pairs = 4000;
        var view = _explain.Dimensions(pairs: Pairs, epsilon: 0.1, seed: 7);
        var d = _model.Info.HiddenSize;
        Assert.Equal(d, view.Width);
        // Cosines of independent Gaussian directions in d dimensions: mean 0, variance exactly 1/d.
        var sd = 1 / Math.Sqrt(d);
        Assert.True(Math.Abs(view.RandomDirections.Mean) < 4 * sd / Math.Sqrt(Pairs), $"mean {view.RandomDirections.Mean}");
        Assert.True(Math.Abs(view.RandomDirections.StandardDeviation - sd) < 4 * sd / Math.Sqrt(2 * Pairs), $"sd {view.RandomDirections.StandardDeviation} vs {sd}");
        Assert.Equal(Pairs, view.RandomDirections.Histogram.Sum());
        Assert.Equal(Pairs, view.TokenEmbeddings.Histogram.Sum());
        Assert.Equal(view.RandomDirections.HistogramMax, view.TokenEmbeddings.HistogramMax);
        // Four unit vectors with pairwise |cos| < 1/3 have a positive definite 4×4 Gram matrix (Gershgorin), impossible in 3-D: at most 3 fit.
        Assert.InRange(view.NearlyOrthogonalIn3D, 2, 3);
        Assert.True(view.NearlyOrthogonalAtWidth > 10 * view.NearlyOrthogonalIn3D, $"{view.NearlyOrthogonalAtWidth} at width {d}");
        Assert.Equal(Math.Exp(d * ((0.01 / 2) - (0.001 / 3)) / 4), view.JohnsonLindenstraussAtWidth, 9);
        Assert.Equal(view, _explain.Dimensions(pairs: Pairs, epsilon: 0.1, seed: 7) with { RandomDirections = view.RandomDirections, TokenEmbeddings = view.TokenEmbeddings });
        Assert.Equal(view.RandomDirections.Mean, _explain.Dimensions(pairs: Pairs, epsilon: 0.1, seed: 7).RandomDirections.Mean);
    }

    [Fact]
    public void TheGreedySearchKeepsOnlyNearlyOrthogonalDirections()
    {
        // In d dimensions with ε below 1/(d − 1) at most d directions fit (Gershgorin again); the search must find them all.
        Assert.Equal(4, ModelExplainer.NearlyOrthogonal(4, 0.3, 100, new Random(1)));
        Assert.Equal(1, ModelExplainer.NearlyOrthogonal(5, 0.999, 1, new Random(1)));
    }

    [Fact]
    public void LeastSquaresRecoversAnExactPolynomial()
    {
        double[] xs = [8, 16, 32, 64, 128];
        var fit = ModelExplainer.LeastSquares(xs, [.. xs.Select(x => 0.5 + (0.02 * x) + (0.0003 * x * x))], 2);
        Assert.Equal([0.5, 0.02, 0.0003], fit.Select(c => Math.Round(c, 9)));
    }

    [Fact]
    public async Task CostMemoryFollowsTheGraphsTensorShapes()
    {
        int[] lengths = [4, 8, 16];
        var cost = await _explain.CostAsync(lengths, repeats: 1);
        Assert.Equal(lengths, cost.Points.Select(p => p.Length));
        Assert.Equal(2, cost.CachedFit.Count);
        Assert.Equal(3, cost.RecomputeFit.Count);
        Assert.All(cost.Points, p => Assert.True(p.CachedStepMs > 0 && p.RecomputeStepMs > 0));
        for (var i = 1; i < cost.Points.Count; i++)
        {
            Assert.True(cost.Points[i].KvCacheBytes > cost.Points[i - 1].KvCacheBytes);
            Assert.True(cost.Points[i].RecomputeScoreBytes > cost.Points[i - 1].RecomputeScoreBytes);
            Assert.True(cost.Points[i].CachedScoreBytes > cost.Points[i - 1].CachedScoreBytes);
        }

        // Independently: the present tensors of a run over n + 1 tokens, and the attention probabilities of those tokens.
        foreach (var point in cost.Points)
        {
            var ids = Ids("In the beginning God created the heaven and the earth. And the earth was without form").Take(point.Length + 1).ToArray();
            Assert.Equal(point.Length + 1, ids.Length);
            Assert.Equal(PresentBytes(ids), point.KvCacheBytes);
            var map = await _explain.AttentionAsync(ids);
            Assert.Equal((long)map.LayerCount * map.HeadCount * ids.Length * ids.Length * sizeof(float), point.RecomputeScoreBytes);
            Assert.Equal(point.RecomputeScoreBytes / ids.Length, point.CachedScoreBytes);
        }
    }

    private long PresentBytes(int[] ids)
    {
        var graph = _model.Runtime.Graph;
        using var feed = new GraphFeed(graph);
        feed.Begin(1, ids.Length, 0);
        feed.Row(0, ids, 0);
        using var runOptions = new RunOptions();
        using var results = feed.Run(graph.Session, runOptions, null, graph.Signature.PresentNames, CancellationToken.None);
        return results.Sum(r => r.GetTensorTypeAndShape().ElementCount * (graph.Signature.KvType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16 ? 2 : 4));
    }

    [Fact]
    public async Task CostRejectsTooFewOrTooLongLengths()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => _explain.CostAsync([4, 8]));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _explain.CostAsync([4, 8, _model.Info.ContextLength]));
    }

    [SharedModelFact("torch-llama-fp32")]
    public void TorchExportedLlamaShowsItsBlocks()
    {
        using var model = LanguageModel.Load(TestPaths.SharedModel("torch-llama-fp32"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var explain = model.Explain();
        var ids = model.Tokenizer.Encode("And God said, Let there be light");
        Assert.True(PlainLogitsDiff(model, explain, ids) <= 1e-5f);
        AssertBranchesSumToTheFinalStream(explain, ids);
        Assert.Equal(model.Info.LayerCount, explain.ResidualTensors(ids).Attention.Length);
        var zeroed = explain.AblatedLogits(ids, 1, null);
        var headZeroed = explain.AblatedLogits(ids, 1, 0);
        Assert.NotEqual(zeroed, headZeroed);
    }

    [SharedModelFact("tiny-llama-fp16", "tiny-gpt2-fp32", "tiny-phi3-gqa-fp16")]
    public async Task FusedGraphsSayWhyTheyCannotShowBlocks()
    {
        using (var llama = LanguageModel.Load(TestPaths.SharedModel("tiny-llama-fp16"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu }))
        using (var explain = llama.Explain())
        {
            var e = await Assert.ThrowsAsync<NotSupportedException>(() => explain.ContributionsAsync("hello world"));
            Assert.Contains("fuses the residual additions into SkipSimplifiedLayerNormalization", e.Message);
            e = await Assert.ThrowsAsync<NotSupportedException>(() => explain.AblateAsync("hello world", 0));
            Assert.Contains("SkipSimplifiedLayerNormalization", e.Message);
        }

        using (var gpt2 = LanguageModel.Load(TestPaths.SharedModel("tiny-gpt2-fp32"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu }))
        using (var explain = gpt2.Explain())
        {
            // This tokenizer's ids run past the random model's 1,000-token vocabulary: ids, not text.
            Assert.Matches("fuses the residual additions into (Embed|Skip)LayerNormalization", Assert.Throws<NotSupportedException>(() => explain.Contributions([5, 6, 7])).Message);
            Assert.Contains("fused Attention operator", Assert.Throws<NotSupportedException>(() => explain.AblatedLogits([5, 6, 7], 0, 1)).Message);
        }

        using var gqa = LanguageModel.Load(TestPaths.SharedModel("tiny-phi3-gqa-fp16"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var gqaExplain = gqa.Explain();
        var head = await Assert.ThrowsAsync<NotSupportedException>(() => gqaExplain.AblateAsync("hello world", 0, 0));
        Assert.Contains("fused GroupQueryAttention operator", head.Message);
    }
}
