using System.Text.Json;
using OnnxLM.Cli;
using OnnxLM.Cli.Explain;
using SkiaSharp;

namespace OnnxLM.Tests;

/// <summary><c>onnxlm explain lens|heads|qk</c> on kjv-tiny: the JSON equals the API's view, the terminal shows it, the PNGs decode and follow the data.</summary>
public sealed class LayerViewsCliTests
{
    private const string Text = "And the LORD spake unto Moses, saying";

    private static Task<(int Code, string Output, string Error)> RunAsync(params string[] args) => CliTests.RunAsync(args);

    [Fact]
    public async Task LensJsonEqualsTheApi()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        using var explain = model.Explain();

        var (code, json, error) = await RunAsync("explain", "lens", Text, "--top", "3", "--json");
        Assert.True(code == 0, error);
        var lens = await explain.LensAsync(Text, 3);
        var root = JsonDocument.Parse(json).RootElement;
        Assert.Equal(lens.Final.Select(f => f.Id), root.GetProperty("final").EnumerateArray().Select(f => f.GetProperty("id").GetInt32()));
        var cell = root.GetProperty("layers")[4][3];
        Assert.Equal(lens.Layers[4][3].Top[0].Id, cell.GetProperty("top")[0].GetProperty("id").GetInt32());
        Assert.Equal(lens.Layers[4][3].FinalTokenProbability, cell.GetProperty("final_token_probability").GetDouble(), 12);
    }

    [Fact]
    public async Task AFusedAttentionGraphGetsAOneLineErrorNamingTheConvertOption()
    {
        // convert --attention auto writes GroupQueryAttention for large models; the head views then say how to get them.
        var (code, output, error) = await RunAsync("explain", "heads", Text, "--model", KjvTinyGqa.Folder, "--layer", "0");
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.StartsWith("onnxlm: ", error);
        Assert.Contains("GroupQueryAttention", error);
        Assert.Contains("--attention standard", error);
        Assert.DoesNotContain("   at ", error); // no stack trace
    }

    [Fact]
    public async Task HeadsAndQueryKeyJsonEqualTheApi()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        using var explain = model.Explain();
        var (hc, heads, _) = await RunAsync("explain", "heads", Text, "--layer", "2", "--json");
        Assert.Equal(0, hc);
        var expected = (await explain.HeadsAsync(Text)).Heads.Where(h => h.Layer == 2).ToList();
        var shown = JsonDocument.Parse(heads).RootElement;
        Assert.Equal(expected.Select(h => h.EntropyBits), shown.GetProperty("heads").EnumerateArray().Select(h => h.GetProperty("entropy_bits").GetDouble()));
        Assert.Equal(model.Info.AttentionHeadCount, shown.GetProperty("weights").GetArrayLength());

        var (qc, qk, _) = await RunAsync("explain", "qk", Text, "--layer", "1", "--query", "3", "--json");
        Assert.Equal(0, qc);
        var scores = await explain.QueryKeyAsync(Text, 1, 3);
        var q = JsonDocument.Parse(qk).RootElement;
        Assert.Equal(scores.Weights[5][2], q.GetProperty("weights")[5][2].GetSingle());
        Assert.Equal(JsonValueKind.Null, q.GetProperty("mask")[4].ValueKind);
    }

    [Fact]
    public async Task TheTerminalShowsTheLayersAndTheScoresAndRefusesABadHead()
    {
        var (tc, terminal, _) = await RunAsync("explain", "lens", Text);
        Assert.Equal(0, tc);
        Assert.Contains("embeddings", terminal, StringComparison.Ordinal);
        Assert.Contains("after layer 7", terminal, StringComparison.Ordinal); // kjv-tiny has 8 layers
        var (kc, table, _) = await RunAsync("explain", "qk", Text, "--layer", "0", "--query", "2", "--head", "1");
        Assert.Equal(0, kc);
        Assert.Contains("−∞ (future)", table, StringComparison.Ordinal);
        Assert.Contains("× 0.177", table, StringComparison.Ordinal); // 1/√32, kjv-tiny's head size

        var (bad, _, message) = await RunAsync("explain", "qk", Text, "--head", "99");
        Assert.NotEqual(0, bad);
        Assert.Contains("--head", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheLensPngIsBrightWhereTheLastLayersAgreeWithThePrediction()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        using var explain = model.Explain();
        var lens = await explain.LensAsync(Text);
        var path = Path.Combine(Path.GetTempPath(), $"onnxlm-lens-{Guid.NewGuid():N}.png");
        try
        {
            var figure = LayerViews.LensPng(lens, path);
            using var bitmap = SKBitmap.Decode(path);
            Assert.Equal((ExplainPng.Width, ExplainPng.Height), (bitmap.Width, bitmap.Height));
            var (rows, n) = (lens.Layers.Count, lens.Tokens.Count);
            var area = figure.DataArea;
            // A point inside cell (row, position), away from its centred label: row 0 (embeddings) at the bottom.
            SKColor At(int row, int p) => bitmap.GetPixel((int)(area.Left + ((p + 0.12) * area.Width / n)), (int)(area.Bottom - ((row + 0.15) * area.Height / rows)));
            var brightest = Enumerable.Range(0, n).MaxBy(p => lens.Layers[^1][p].FinalTokenProbability);
            var bright = At(rows - 1, brightest);
            var dark = At(0, brightest);
            Assert.True(lens.Layers[^1][brightest].FinalTokenProbability > lens.Layers[0][brightest].FinalTokenProbability + 0.5);
            // Viridis: high values are yellow (red and green high), low ones dark purple.
            Assert.True(bright.Red + bright.Green > dark.Red + dark.Green + 200, $"bright {bright} vs dark {dark}");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
