using OnnxLM.Tests;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>
/// The embedded kjv-tiny quantized from its own graph (read back as a checkpoint) with the default settings keeps its
/// held-out quality: bits per byte on held-out Revelation (the model card's method, on its first six chapters to keep the
/// test short; the benchmark's <c>quantization</c> mode scores all 22) within 0.005 of float for int8 and 0.03 for int4,
/// and greedy text the float model itself finds about as likely as its own greedy text.
/// </summary>
public sealed class KjvTinyQuantizationTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("onnxlm-kjv-quant-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    [Fact]
    public async Task QuantizedKjvTinyKeepsItsHeldOutScoreAndWritesKjvText()
    {
        var cpu = new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu };
        using var original = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), cpu);
        var before = await RevelationBitsPerByteAsync(original);
        foreach (var (quantize, allowed) in new[] { ("int8", 0.005), ("int4", 0.03) })
        {
            var folder = Path.Combine(_out, quantize);
            DecoderModelBuilder.Convert(TestPaths.RepoModel("kjv-tiny"), folder, new ModelBuilderOptions
            {
                Float16Weights = true, ContextLength = 256, Quantization = WeightQuantization.Parse(quantize),
            });
            using var quantized = LanguageModel.Load(folder, cpu);
            Assert.Equal(("float16", quantize), (original.Info.WeightType, quantized.Info.WeightType));
            Assert.True(new FileInfo(Path.Combine(folder, "model.onnx")).Length < 0.75 * new FileInfo(original.Info.GraphPath).Length);
            var after = await RevelationBitsPerByteAsync(quantized);
            Assert.True(after - before <= allowed, $"{quantize}: {after:F4} bits per byte against {before:F4} for float");
            await AssertGreedyTextIsKjvLike(original, quantized, quantize);
        }
    }

    private static async Task AssertGreedyTextIsKjvLike(LanguageModel original, LanguageModel quantized, string quantize)
    {
        // Greedy text: the float model scores the quantized model's continuation about as well as its own (bits per
        // byte of the continuation given the prompt), so the text stays in the model's King James register.
        const string prompt = "And the LORD said unto Moses,";
        var greedy = new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [] };
        var ownText = (await original.GenerateAsync(prompt, greedy)).Text;
        var quantizedText = (await quantized.GenerateAsync(prompt, greedy)).Text;
        var own = await original.ScoreAsync(prompt, ownText);
        var theirs = await original.ScoreAsync(prompt, quantizedText);
        double BitsPerByte(double logProb, string text) => -logProb / Math.Log(2) / System.Text.Encoding.UTF8.GetByteCount(text);
        Assert.True(BitsPerByte(theirs.LogProb, quantizedText) <= BitsPerByte(own.LogProb, ownText) + 0.25,
            $"float greedy: \"{ownText}\" ({BitsPerByte(own.LogProb, ownText):F3} bits per byte); {quantize} greedy: \"{quantizedText}\" ({BitsPerByte(theirs.LogProb, quantizedText):F3})");
    }

    /// <summary>Bits per byte on Revelation 1–6, each chapter scored on its own in rolling windows of 256 (as the CLI does).</summary>
    private static async Task<double> RevelationBitsPerByteAsync(LanguageModel model)
    {
        double logProb = 0;
        long bytes = 0;
        foreach (var chapter in File.ReadLines(TestPaths.TestData("kjv/revelation.txt")).Take(6))
        {
            var result = await model.ScorePerplexityAsync(chapter, new PerplexityOptions { WindowLength = 256 });
            logProb += result.LogProb;
            bytes += result.ByteCount;
            Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(chapter), result.ByteCount);
        }

        return -logProb / Math.Log(2) / bytes;
    }
}
