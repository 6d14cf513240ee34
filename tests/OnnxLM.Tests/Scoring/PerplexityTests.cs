using System.Text.Json;

namespace OnnxLM.Tests;

public sealed class PerplexityTests
{
    private const string Text = "And God said, Let there be light: and there was light. And God saw the light, that it was good: " +
                                "and God divided the light from the darkness. And God called the light Day, and the darkness he called Night.";

    [SharedModelFact("torch-llama-fp32")]
    public async Task TextInOneWindowEqualsOneFullPassForAnyCoveringStride()
    {
        using var model = ConformanceModels.Load("torch-llama-fp32");
        var tokens = model.Tokenizer.Encode(Text, addSpecialTokens: false);
        int[] sequence = [1, .. tokens];

        // Independent: one pass over BOS + text, log-softmax by hand.
        var vocab = model.Info.VocabularySize;
        var logits = new float[(sequence.Length - 1) * vocab];
        using (var session = model.CreateSession())
        {
            session.AppendWithAllLogits(sequence[..^1], logits, CancellationToken.None);
        }

        double expected = 0;
        for (var t = 1; t < sequence.Length; t++)
        {
            var row = logits.AsSpan((t - 1) * vocab, vocab);
            var max = double.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, v);
            double sum = 0;
            foreach (var v in row) sum += Math.Exp(v - max);
            expected += row[sequence[t]] - max - Math.Log(sum);
        }

        foreach (var stride in new int?[] { null, 200, tokens.Length, tokens.Length + 5 })
        {
            var result = await model.ScorePerplexityAsync(Text, new PerplexityOptions { WindowLength = 200, Stride = stride });
            Assert.Equal(expected, result.LogProb, 1e-6);
            Assert.Equal(tokens.Length, result.TokenCount);
            Assert.Equal(1, result.WindowCount);
        }

        var whole = await model.ScorePerplexityAsync(Text);
        Assert.Equal(expected, whole.LogProb, 1e-6);
        Assert.Equal(Math.Exp(-expected / tokens.Length), whole.Perplexity, 1e-9);
        Assert.Equal(-expected / Math.Log(2) / System.Text.Encoding.UTF8.GetByteCount(Text), whole.BitsPerByte, 1e-12);
        Assert.Equal(Math.Exp(-expected / Text.Split(' ').Length), whole.WordPerplexity, 1e-9);
    }

    [SharedModelFact("torch-llama-fp32")]
    public async Task WindowsPredictEveryTokenOnceWithTheSpecifiedContext()
    {
        using var model = ConformanceModels.Load("torch-llama-fp32");
        var tokens = model.Tokenizer.Encode(Text, addSpecialTokens: false);
        int[] sequence = [1, .. tokens];
        const int window = 16;
        foreach (var stride in new[] { 16, 10, 3 })
        {
            var progress = new List<double>();
            var result = await model.ScorePerplexityAsync(Text, new PerplexityOptions { WindowLength = window, Stride = stride }, new SyncProgress(progress.Add));
            Assert.Equal(tokens.Length, result.TokenCount);
            Assert.Equal((tokens.Length + stride - 1) / stride, result.WindowCount);
            Assert.Equal(1.0, progress[^1], 1e-12);

            // The same windows through ScoreAsync: targets [next, end) after the (up to) `window` tokens before end.
            double expected = 0;
            for (var next = 1; next < sequence.Length;)
            {
                var end = Math.Min(next + stride, sequence.Length);
                var start = Math.Max(0, end - 1 - window);
                var score = await model.ScoreAsync(sequence[start..next], sequence[next..end]);
                expected += score.LogProb;
                next = end;
            }

            Assert.Equal(expected, result.LogProb, 1e-6);
        }
    }

    [SharedModelFact("torch-llama-fp32")]
    public async Task HeldOutBitsPerByteAgreesWithThePublishedFigure()
    {
        // SOURCE.md of torch-llama-fp32: held-out loss 3.4856 nats/token on Revelation (17,187 tokens in disjoint
        // 128-token windows of the <s>chapter</s> stream) = 3.4856 · 17187 / ln 2 / 62053 bytes ≈ 1.393 bits per byte.
        // Scored here chapter by chapter with 128-token windows (the length it was trained on), by OnnxLM's own scorer.
        using var model = ConformanceModels.Load("torch-llama-fp32");
        Assert.InRange(await RevelationBitsPerByteAsync(model, 128), 1.393 - 0.015, 1.393 + 0.015);
    }

    [Fact]
    public async Task DefaultModelScoresRevelationAsItsTrainerDid()
    {
        // summary.json holds PyTorch's own evaluation at the end of training (build/train-default-model/train.py):
        // the <s>chapter</s> stream of Revelation cut into disjoint windows of `seq` + 1 tokens, each window's first
        // token predicting nothing. The converted ONNX graph, scored by OnnxLM the same way, must agree.
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.RepoModel(ConformanceModels.Repo), "summary.json")));
        var root = summary.RootElement;
        var window = root.GetProperty("args").GetProperty("seq").GetInt32();

        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var stream = new List<int>();
        long bytes = 0;
        foreach (var chapter in File.ReadLines(TestPaths.TestData("kjv/revelation.txt")))
        {
            stream.Add(model.Tokenizer.BosTokenId!.Value);
            stream.AddRange(model.Tokenizer.Encode(chapter, addSpecialTokens: false));
            stream.Add(model.Tokenizer.EosTokenIds[0]);
            bytes += System.Text.Encoding.UTF8.GetByteCount(chapter);
        }

        double logProb = 0;
        var predicted = 0;
        for (var start = 0; start < stream.Count - 1; start += window)
        {
            var chunk = stream.GetRange(start, Math.Min(window + 1, stream.Count - start)).ToArray();
            logProb += (await model.ScoreAsync(chunk[..1], chunk[1..])).LogProb;
            predicted += chunk.Length - 1;
        }

        var bitsPerByte = -logProb / Math.Log(2) / bytes;
        Assert.Equal(root.GetProperty("heldout_tokens").GetInt32(), predicted);
        Assert.Equal(root.GetProperty("heldout_bytes").GetInt64(), bytes);
        Assert.Equal(root.GetProperty("heldout_loss").GetDouble(), -logProb / predicted, 5e-4);
        Assert.Equal(root.GetProperty("heldout_bits_per_byte").GetDouble(), bitsPerByte, 5e-4);
    }

    [Fact]
    public async Task DefaultModelMeetsItsHeldOutTarget()
    {
        // The default model's goal (models/kjv-tiny/README.md): at most 1.30 bits per byte on held-out Revelation,
        // each chapter scored by the CLI's method (rolling windows of the trained context length after <s>).
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        Assert.InRange(await RevelationBitsPerByteAsync(model, model.Info.ContextLength), 1.0, 1.30);
    }

    /// <summary>Bits per byte on held-out Revelation, each chapter scored on its own in rolling windows (as the CLI does).</summary>
    private static async Task<double> RevelationBitsPerByteAsync(LanguageModel model, int window)
    {
        double logProb = 0;
        long bytes = 0;
        foreach (var chapter in File.ReadLines(TestPaths.TestData("kjv/revelation.txt")))
        {
            var result = await model.ScorePerplexityAsync(chapter, new PerplexityOptions { WindowLength = window });
            logProb += result.LogProb;
            bytes += result.ByteCount;
        }

        Assert.Equal(62053, bytes);
        return -logProb / Math.Log(2) / bytes;
    }

    [SharedModelFact("torch-llama-fp32")]
    public async Task BadOptionsAndCancellation()
    {
        using var model = ConformanceModels.Load("torch-llama-fp32");
        Assert.Throws<InvalidOptionException>(() => new PerplexityOptions { WindowLength = 1 });
        Assert.Throws<InvalidOptionException>(() => new PerplexityOptions { Stride = 0 });
        await Assert.ThrowsAsync<ContextLengthExceededException>(() => model.ScorePerplexityAsync(Text, new PerplexityOptions { WindowLength = 300 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => model.ScorePerplexityAsync(Text, new PerplexityOptions { WindowLength = 8, Stride = 9 }));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => model.ScorePerplexityAsync(Text, null, null, cts.Token));
    }

    private sealed class SyncProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}
