using System.Text.Json;
using OnnxLM.Cli;
using SkiaSharp;

namespace OnnxLM.Tests;

/// <summary><c>onnxlm explain contributions|dimensions|cost</c> on kjv-tiny: JSON equal to the API's views, terminal text, PNGs that decode and show the data.</summary>
public sealed class BlockViewsCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("onnxlm-blocks-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<(int Code, string Output, string Error)> RunAsync(params string[] args) => CliTests.RunAsync(args);

    [Fact]
    public async Task TheContributionsPrintJsonFromTheApi()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        using var explain = model.Explain();

        var (code, json, error) = await RunAsync("explain", "contributions", "the children of", "--layer", "3", "--head", "2", "--top", "3", "--json");
        Assert.True(code == 0, error);
        var view = JsonDocument.Parse(json).RootElement;
        var ablation = await explain.AblateAsync("the children of", 3, 2, 3);
        Assert.Equal(ablation.KlDivergenceBits, view.GetProperty("ablation").GetProperty("kl_divergence_bits").GetDouble(), 9);
        Assert.Equal(2, view.GetProperty("ablation").GetProperty("head").GetInt32());
        // The norms themselves are checked against the tensors and the reference pass in BlockViewTests and BlockContributionTests.
        var tokens = model.Tokenizer.Encode("the children of").Select(id => model.Tokenizer.TokenText(id));
        Assert.Equal(tokens, view.GetProperty("contributions").GetProperty("tokens").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(model.Info.LayerCount, view.GetProperty("contributions").GetProperty("attention_norms").GetArrayLength());
    }

    [Fact]
    public async Task TheDimensionsAndCostPrintJsonFromTheApi()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        using var explain = model.Explain();

        var (dc, dimensions, _) = await RunAsync("explain", "dimensions", "--epsilon", "0.2", "--seed", "3", "--pairs", "500", "--json");
        Assert.Equal(0, dc);
        var expected = explain.Dimensions(500, 0.2, 3);
        var d = JsonDocument.Parse(dimensions).RootElement;
        Assert.Equal(expected.NearlyOrthogonalAtWidth, d.GetProperty("nearly_orthogonal_at_width").GetInt32());
        Assert.Equal(expected.TokenEmbeddings.Mean, d.GetProperty("token_embeddings").GetProperty("mean").GetDouble(), 12);

        var (cc, cost, _) = await RunAsync("explain", "cost", "--lengths", "2,4,8", "--repeats", "1", "--json");
        Assert.Equal(0, cc);
        var points = JsonDocument.Parse(cost).RootElement.GetProperty("points").EnumerateArray().ToList();
        Assert.Equal([2, 4, 8], points.Select(p => p.GetProperty("length").GetInt32()));
        Assert.Equal([.. new[] { 3L, 5, 9 }.Select(n => n * model.Info.KvCacheBytesPerToken)], points.Select(p => p.GetProperty("kv_cache_bytes").GetInt64()));
    }

    [Fact]
    public async Task TheTerminalSaysWhatWasZeroedAndBadOptionsAreNamed()
    {
        var (code, output, _) = await RunAsync("explain", "contributions", "the children of", "--layer", "7");
        Assert.Equal(0, code);
        Assert.Contains("Zeroing layer 7's MLP: KL", output);
        Assert.Contains("·Israel", output);

        var (bad, _, error) = await RunAsync("explain", "dimensions", "--epsilon", "2");
        Assert.NotEqual(0, bad);
        Assert.Contains("--epsilon", error);
        (bad, _, error) = await RunAsync("explain", "cost", "--lengths", "4,x,8");
        Assert.NotEqual(0, bad);
        Assert.Contains("--lengths", error);
        (bad, _, error) = await RunAsync("explain", "contributions", "the children of", "--head", "99");
        Assert.NotEqual(0, bad);
        Assert.Contains("--head", error);
    }

    [Fact]
    public async Task ThePngsDecodeAndShowTheirSeries()
    {
        var files = new[] { "contributions", "dimensions", "cost" }.ToDictionary(v => v, v => Path.Combine(_dir, v + ".png"));
        Assert.Equal(0, (await RunAsync("explain", "contributions", "the children of", "--png", files["contributions"])).Code);
        Assert.Equal(0, (await RunAsync("explain", "dimensions", "--pairs", "500", "--png", files["dimensions"])).Code);
        Assert.Equal(0, (await RunAsync("explain", "cost", "--lengths", "2,4,8", "--repeats", "1", "--png", files["cost"])).Code);
        foreach (var (view, file) in files)
        {
            using var image = SKBitmap.Decode(file);
            Assert.Equal((1000, 800), (image.Width, image.Height));
            // Category10's colours (blue #1f77b4, orange #ff7f0e, red #d62728) fill the bars or mark the series.
            int Count(SKColor c) => Enumerable.Range(0, 200).Sum(y => Enumerable.Range(0, 250).Count(x => Near(image.GetPixel(x * 4, y * 4), c)));
            Assert.True(Count(new SKColor(0x1f, 0x77, 0xb4)) > 3, $"{view}: no blue series");
            if (view == "contributions") Assert.True(Count(new SKColor(0xff, 0x7f, 0x0e)) > 3, $"{view}: no orange series");
            if (view == "cost") Assert.True(Count(new SKColor(0xd6, 0x27, 0x28)) > 3, $"{view}: no red series");
        }
    }

    private static bool Near(SKColor a, SKColor b) => Math.Abs(a.Red - b.Red) <= 10 && Math.Abs(a.Green - b.Green) <= 10 && Math.Abs(a.Blue - b.Blue) <= 10;
}
