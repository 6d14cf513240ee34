using OnnxLM.Explain;
using OnnxLM.Sampling;

namespace OnnxLM.Tests;

/// <summary>The explain views on kjv-tiny (and on checkpoints from ../shared converted here), checked against independent computations.</summary>
public sealed class ModelExplainerTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
    private readonly ModelExplainer _explain;

    public ModelExplainerTests() => _explain = _model.Explain();

    public void Dispose()
    {
        _explain.Dispose();
        _model.Dispose();
    }

    [Theory]
    [InlineData("In the beginning God created the heaven and the earth.")]
    [InlineData("And the LORD spake unto Moses, saying, Speak unto the children of Israel")]
    [InlineData("  spaces,\ttabs\nand newlines; ünïcödé and 123456")]
    public void MergesReplayToTheTokenizersTokens(string text)
    {
        var explanation = _explain.Tokens(text);
        var replayed = new List<string>();
        foreach (var word in explanation.Words)
        {
            // Start from the word's characters as the byte-level alphabet spells them, and apply each merge to its leftmost pair.
            var pieces = word.Word.EnumerateRunes().Select(r => r.ToString()).ToList();
            foreach (var step in word.Merges)
            {
                var i = Enumerable.Range(0, pieces.Count - 1).First(k => pieces[k] == step.Left && pieces[k + 1] == step.Right);
                pieces[i] = step.Result;
                pieces.RemoveAt(i + 1);
            }

            replayed.AddRange(pieces);
        }

        var pieceIds = replayed.Select(p => _model.Tokenizer.PieceToId(p)!.Value).ToArray();
        Assert.Equal(_model.Tokenizer.Encode(text, addSpecialTokens: false), pieceIds);
        Assert.Equal(_model.Tokenizer.Encode(text), explanation.Tokens.Select(t => t.Id));
        Assert.All(explanation.Tokens.Where(t => !t.IsSpecial), t => Assert.Equal(text.Substring(t.Start, t.Length), t.Text));
        var last = explanation.Tokens.Last(t => !t.IsSpecial);
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(text), last.ByteStart + last.ByteLength); // the spans reach the end of the text
    }

    [Fact]
    public async Task NextTokenDistributionsSumToOneAndZeroIsTheArgmax()
    {
        var vocab = _model.Info.VocabularySize;
        var next = await _explain.NextTokenAsync("And God said", top: vocab, temperatures: [0f, 0.5f, 1f, 2f]);
        foreach (var view in next.Temperatures)
        {
            Assert.Equal(1.0, view.Top.Sum(t => t.Probability), 6);
            Assert.Equal(1.0, view.TopMass, 6);
        }

        var greedy = await _model.GenerateAsync("And God said", new GenerationOptions { MaxNewTokens = 1 });
        Assert.Equal((greedy.TokenIds[0], 1.0), (next.Temperatures[0].Top[0].Id, next.Temperatures[0].Top[0].Probability));
        Assert.Equal(0, next.Temperatures[0].EntropyBits);
        // Higher temperature, flatter distribution: entropy grows, the top token's share shrinks.
        Assert.True(next.Temperatures[1].EntropyBits < next.Temperatures[2].EntropyBits && next.Temperatures[2].EntropyBits < next.Temperatures[3].EntropyBits);
        Assert.True(next.Temperatures[1].Top[0].Probability > next.Temperatures[3].Top[0].Probability);

        // The top-k listed at T = 1 is the set the sampler's top-k stage keeps on the same logits.
        using var session = _model.CreateSession();
        session.Append(_model.Tokenizer.EncodeForModel("And God said", null));
        var logits = session.NextTokenLogits.ToArray();
        new TopKProcessor(10).Process(logits, new SamplingContext(new Random(0), 1));
        var kept = Enumerable.Range(0, vocab).Where(i => !float.IsNegativeInfinity(logits[i])).ToHashSet();
        var ten = await _explain.NextTokenAsync("And God said", top: 10, temperatures: [1f]);
        Assert.Equal(kept, ten.Temperatures[0].Top.Select(t => t.Id).ToHashSet());
        Assert.Equal(next.Temperatures[2].Top.Take(10).Sum(t => t.Probability), ten.Temperatures[0].TopMass, 9);
    }

    [Fact]
    public async Task SurpriseIsTheScoredLogProbabilityInBits()
    {
        const string text = "And God said, Let there be light";
        var surprise = await _explain.SurpriseAsync(text);
        var ids = _model.Tokenizer.Encode(text, addSpecialTokens: false);
        var score = await _model.ScoreAsync([_model.Tokenizer.BosTokenId!.Value], ids);
        Assert.Equal(ids, surprise.Tokens.Select(t => t.Id));
        for (var i = 0; i < ids.Length; i++)
        {
            Assert.Equal(-score.Tokens[i].LogProb / Math.Log(2), surprise.Tokens[i].SurpriseBits, 9);
            Assert.Equal(score.Tokens[i].Rank, surprise.Tokens[i].Rank);
        }
    }

    [Fact]
    public async Task AttentionRowsSumToOneAndTheFutureIsMasked()
    {
        var map = await _explain.AttentionAsync("In the beginning God created the heaven");
        Assert.Equal((_model.Info.LayerCount, _model.Info.AttentionHeadCount), (map.LayerCount, map.HeadCount));
        var n = map.Tokens.Count;
        Assert.Equal(_model.Tokenizer.EncodeForModel("In the beginning God created the heaven", null).Length, n);
        for (var layer = 0; layer < map.LayerCount; layer++)
        {
            for (var head = 0; head < map.HeadCount; head++)
            {
                for (var q = 0; q < n; q++)
                {
                    var row = Enumerable.Range(0, n).Select(k => map[layer, head, q, k]).ToArray();
                    Assert.Equal(1.0, row.Sum(), 4);
                    Assert.All(row.Skip(q + 1), w => Assert.Equal(0f, w));
                }
            }
        }

        Assert.Equal(1f, map[0, 0, 0, 0], 5); // the first token can only attend to itself
    }

    [Fact]
    public void ParametersSumToTheModelAndMatchItsConfiguration()
    {
        var breakdown = _explain.Parameters();
        var (total, _) = ReferenceParameterCounter.Count(_model.Info.GraphPath); // an independent walk of the same file
        Assert.Equal(total, breakdown.Total);
        var group = breakdown.Groups.ToDictionary(g => g.Component, g => g.Count);
        // kjv-tiny's config.json: hidden 320, 10 heads of 32, 2 KV heads, MLP 864, 8 layers, vocabulary 4096, tied embeddings.
        const long hidden = 320, head = 32, heads = 10, kv = 2, mlp = 864, layers = 8, vocab = 4096;
        Assert.Equal(vocab * hidden, group["embeddings"]);
        Assert.Equal(layers * ((hidden * heads * head) + (2 * hidden * kv * head) + (heads * head * hidden)), group["attention"]);
        Assert.Equal(layers * 3 * hidden * mlp, group["MLP"]);
        Assert.Equal((2 * layers * hidden) + hidden, group["norms"]);
        Assert.True(group["MLP"] > group["attention"], "the talk's point: MLPs hold most of a layer's parameters");
        Assert.Equal(1.0, breakdown.Groups.Sum(g => g.Share), 9);
    }

    [Fact]
    public void ATokenIsItsOwnNearestNeighbourAndRandomPairsAreNearlyOrthogonal()
    {
        var god = _model.Tokenizer.Encode(" God", addSpecialTokens: false).Single();
        var nearest = _explain.NearestTokens(god, 5);
        Assert.Equal(god, nearest[0].Id);
        Assert.Equal(1.0, nearest[0].Cosine, 6);
        Assert.True(nearest[1].Cosine < 1 && nearest[1].Cosine > nearest[4].Cosine - 1e-12);

        var (king, man, woman) = (Id(" king"), Id(" man"), Id(" woman"));
        var analogy = _explain.Analogy(king, man, woman, 5);
        Assert.Equal(5, analogy.Count);
        Assert.DoesNotContain(analogy, t => t.Id == king || t.Id == man || t.Id == woman);
        Assert.All(analogy, t => Assert.InRange(t.Id, 0, _model.Info.VocabularySize - 1));

        var cosines = _explain.RandomPairCosines(pairs: 3000, seed: 1);
        Assert.Equal(3000, cosines.Histogram.Sum());
        // Far from parallel, though not centred on 0: kjv-tiny's embeddings share a common direction (mean ≈ 0.3).
        Assert.InRange(cosines.Mean, -0.5, 0.5);
        Assert.True(cosines.StandardDeviation is > 0.01 and < 0.5, $"sd = {cosines.StandardDeviation}");
    }

    private int Id(string text) => _model.Tokenizer.Encode(text, addSpecialTokens: false)[0];

    [Fact]
    public async Task TheCacheCostsItsBytesAndSavesRecomputation()
    {
        var cache = await _explain.CacheAsync(lengths: [16, 128], repeats: 2);
        Assert.Equal(2L * 8 * 2 * 32 * 4, cache.BytesPerToken); // 2 (K, V) × layers × KV heads × head size × 4 bytes (float32)
        Assert.Equal(cache.BytesPerToken * 256, cache.BytesAtContext);
        var long128 = cache.Timings.Single(t => t.Length == 128);
        Assert.True(long128.CachedStepMs < long128.RecomputeStepMs, $"cached {long128.CachedStepMs} ms vs recompute {long128.RecomputeStepMs} ms");
        Assert.All(cache.Timings, t => Assert.True(t.PrefillMs > 0 && t.CachedStepMs > 0));
    }

    [SharedModelFact("torch-llama-fp32-hf")]
    public async Task SurgeryAndBuiltAttentionOutputsAgreeAndEmbeddingsMatchTheCheckpoint()
    {
        var root = Path.Combine(Path.GetTempPath(), $"onnxlm-explain-{Guid.NewGuid():N}");
        try
        {
            var checkpoint = TestPaths.SharedModel("torch-llama-fp32-hf");
            OnnxLM.ModelBuilder.DecoderModelBuilder.Convert(checkpoint, Path.Combine(root, "plain"));
            OnnxLM.ModelBuilder.DecoderModelBuilder.Convert(checkpoint, Path.Combine(root, "attentions"), new OnnxLM.ModelBuilder.ModelBuilderOptions { OutputAttentions = true });
            using var plain = LanguageModel.Load(Path.Combine(root, "plain"));
            using var built = LanguageModel.Load(Path.Combine(root, "attentions"));
            using var plainExplain = plain.Explain();
            using var builtExplain = built.Explain();
            const string text = "And God said, Let there be light";
            var surgery = await plainExplain.AttentionAsync(text);
            var outputs = await builtExplain.AttentionAsync(text);
            Assert.Equal((outputs.LayerCount, outputs.HeadCount, outputs.Tokens.Count), (surgery.LayerCount, surgery.HeadCount, surgery.Tokens.Count));
            for (var l = 0; l < surgery.LayerCount; l++)
                for (var h = 0; h < surgery.HeadCount; h++)
                    for (var q = 0; q < surgery.Tokens.Count; q++)
                        for (var k = 0; k < surgery.Tokens.Count; k++)
                            Assert.Equal(outputs[l, h, q, k], surgery[l, h, q, k], 5);

            // Cosine similarity from the checkpoint's own embedding matrix, computed here.
            var weights = OnnxLM.ModelBuilder.SafeTensors.SafeTensorsFile.Open(checkpoint);
            var hidden = plain.Info.HiddenSize;
            var matrix = weights.Read("model.embed_tokens.weight", plain.Info.VocabularySize, hidden);
            double Cos(int a, int b)
            {
                double dot = 0, na = 0, nb = 0;
                for (var i = 0; i < hidden; i++) { dot += matrix[a * hidden + i] * matrix[b * hidden + i]; na += matrix[a * hidden + i] * matrix[a * hidden + i]; nb += matrix[b * hidden + i] * matrix[b * hidden + i]; }
                return dot / Math.Sqrt(na * nb);
            }

            var nearest = plainExplain.NearestTokens(100, 3);
            Assert.Equal(100, nearest[0].Id);
            Assert.Equal(Cos(100, nearest[1].Id), nearest[1].Cosine, 5);
            Assert.Equal(Enumerable.Range(0, plain.Info.VocabularySize).Where(i => i != 100).Max(i => Cos(100, i)), nearest[1].Cosine, 5);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
