using System.Text.Json;
using OnnxLM.Cli;
using OnnxLM.Cli.Explain;
using SkiaSharp;

namespace OnnxLM.Tests;

/// <summary><c>onnxlm explain</c> on kjv-tiny: the JSON equals the API's view, the terminal view shows it, the PNGs decode and follow the data.</summary>
public sealed class ExplainCliTests
{
    private static Task<(int Code, string Output, string Error)> RunAsync(params string[] args) => CliTests.RunAsync(args);

    [Fact]
    public async Task EveryViewPrintsJsonFromTheApi()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        using var explain = model.Explain();

        var (code, json, error) = await RunAsync("explain", "next", "And God said", "--top", "3", "--temperatures", "0,1", "--json");
        Assert.True(code == 0, error);
        var next = JsonDocument.Parse(json).RootElement;
        var expected = await explain.NextTokenAsync("And God said", 3, [0f, 1f]);
        Assert.Equal(expected.Temperatures[1].Top.Select(t => t.Id), next.GetProperty("temperatures")[1].GetProperty("top").EnumerateArray().Select(t => t.GetProperty("id").GetInt32()));
        Assert.Equal(expected.Temperatures[1].EntropyBits, next.GetProperty("temperatures")[1].GetProperty("entropy_bits").GetDouble(), 9);

        var (pc, parameters, _) = await RunAsync("explain", "params", "--json");
        Assert.Equal(0, pc);
        Assert.Equal(explain.Parameters().Total, JsonDocument.Parse(parameters).RootElement.GetProperty("total").GetInt64());

        var (sc, surprise, _) = await RunAsync("explain", "surprise", "And God said", "--json");
        Assert.Equal(0, sc);
        Assert.Equal((await explain.SurpriseAsync("And God said")).MeanSurpriseBits, JsonDocument.Parse(surprise).RootElement.GetProperty("mean_surprise_bits").GetDouble(), 9);

        var (ac, attention, _) = await RunAsync("explain", "attention", "In the beginning", "--layer", "0", "--head", "1", "--json");
        Assert.Equal(0, ac);
        var map = await explain.AttentionAsync("In the beginning");
        var weights = JsonDocument.Parse(attention).RootElement.GetProperty("weights");
        Assert.Equal(map[0, 1, 2, 1], weights[2][1].GetSingle(), 6);

        var (ec, embeddings, _) = await RunAsync("explain", "embeddings", " God", "--top", "3", "--json");
        Assert.Equal(0, ec);
        var god = model.Tokenizer.Encode(" God", addSpecialTokens: false)[0];
        Assert.Equal(explain.NearestTokens(god, 3).Select(t => t.Id), JsonDocument.Parse(embeddings).RootElement.GetProperty("nearest").EnumerateArray().Select(t => t.GetProperty("id").GetInt32()));

        var (tc, tokens, _) = await RunAsync("explain", "tokens", "the heaven", "--json");
        Assert.Equal(0, tc);
        Assert.Equal(explain.Tokens("the heaven").Tokens.Select(t => t.Id), JsonDocument.Parse(tokens).RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("id").GetInt32()));
    }

    [Fact]
    public async Task TheTerminalViewsShowTheNumbers()
    {
        var (code, output, _) = await RunAsync("explain", "attention", "In the beginning");
        Assert.Equal(0, code);
        Assert.Contains("layer 7, average of 10 heads", output);
        Assert.Contains("1.00", output); // the first token attends only to itself
        var (pc, parameters, _) = await RunAsync("explain", "params");
        Assert.Equal(0, pc);
        Assert.Contains("9,934,522 parameters", parameters);
        Assert.Contains("MLP (66.8 %)", parameters);
        var (bc, bad, badError) = await RunAsync("explain", "attention", "In", "--layer", "99");
        Assert.Equal(1, bc);
        Assert.Contains("--layer must be between 0 and 7", badError);
    }

    [Fact]
    public async Task TheAttentionPngDecodesAndItsCellsFollowTheWeights()
    {
        var file = Path.Combine(Path.GetTempPath(), $"onnxlm-attention-{Guid.NewGuid():N}.png");
        try
        {
            using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
            using var explain = model.Explain();
            var map = await explain.AttentionAsync("In the beginning God");
            var weights = map.Head(0, 0);
            var area = ExplainPng.Attention(weights, map.Tokens, "test", file).DataArea;
            using var image = SKBitmap.Decode(file);
            Assert.Equal((ExplainPng.Width, ExplainPng.Height), (image.Width, image.Height));
            var n = map.Tokens.Count;
            SKColor Cell(int q, int k) => image.GetPixel((int)(area.Left + ((k + 0.5) * area.Width / n)), (int)(area.Top + ((q + 0.5) * area.Height / n)));
            // Masked cells (weight 0) share one colour; cell (0, 0) (weight 1) another; brightness follows weight along a row.
            Assert.Equal(Cell(0, n - 1), Cell(1, n - 1));
            Assert.NotEqual(Cell(0, 0), Cell(0, n - 1));
            static float Brightness(SKColor c) => (c.Red * 0.299f) + (c.Green * 0.587f) + (c.Blue * 0.114f);
            var row = n - 1;
            var order = Enumerable.Range(0, n).OrderBy(k => weights[row][k]).ToList();
            Assert.True(Brightness(Cell(row, order[0])) < Brightness(Cell(row, order[^1])), "viridis: a larger weight is brighter");

            // The other images decode at the same size.
            foreach (var view in (string[][])[["next", "And God said"], ["surprise", "And God said"], ["params"], ["cache"], ["embeddings", " God"]])
            {
                var png = Path.ChangeExtension(file, $".{view[0]}.png");
                var (code, _, error) = await RunAsync(["explain", .. view, "--png", png, "--json"]);
                Assert.True(code == 0, error);
                using var other = SKBitmap.Decode(png);
                Assert.Equal((ExplainPng.Width, ExplainPng.Height), (other.Width, other.Height));
                File.Delete(png);
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task TheAttentionCellsAreEqualAndCentredOnTheirTicks()
    {
        var file = Path.Combine(Path.GetTempPath(), $"onnxlm-cells-{Guid.NewGuid():N}.png");
        try
        {
            using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
            using var explain = model.Explain();
            var map = await explain.AttentionAsync("In the beginning God created the heaven and the earth");
            var n = map.Tokens.Count;
            var figure = ExplainPng.Attention(map.LayerAverage(7), map.Tokens, "test", file);
            using var image = SKBitmap.Decode(file);
            var area = figure.DataArea;
            var (w, h) = (area.Width / n, area.Height / n);

            // The last row (every key visible) and the first column (every query attends to <s>): each cell is one colour from
            // 3 px inside its left edge to 3 px inside its right edge, and its neighbour's colour starts within 2 px of that edge.
            // A heatmap shifted by half a cell (half-size cells at the ends) fails both.
            var y = (int)(area.Bottom - (h / 2));
            for (var k = 0; k < n; k++)
            {
                var (left, right) = (area.Left + (k * w), area.Left + ((k + 1) * w));
                var colour = image.GetPixel((int)(left + 3), y);
                Assert.Equal(colour, image.GetPixel((int)(right - 3), y));
                Assert.Equal(colour, image.GetPixel((int)((left + right) / 2), y));
                if (k + 1 < n && image.GetPixel((int)(right + 3), y) != colour) Assert.NotEqual(colour, image.GetPixel((int)(right + 2), y));
            }

            var x = (int)(area.Left + (w / 2));
            for (var q = 0; q < n; q++)
            {
                var (top, bottom) = (area.Top + (q * h), area.Top + ((q + 1) * h));
                Assert.Equal(image.GetPixel(x, (int)(top + 3)), image.GetPixel(x, (int)(bottom - 3)));
            }

            // Each key's tick sits on its cell's centre.
            Assert.Equal(n, figure.Ticks.Count);
            for (var k = 0; k < n; k++) Assert.Equal(area.Left + ((k + 0.5) * w), figure.Ticks[k], 1.0);
            AssertLabelsFit(figure, image);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task TheNextTokenLabelsAreWholeAndClearOfTheEdges()
    {
        var file = Path.Combine(Path.GetTempPath(), $"onnxlm-next-{Guid.NewGuid():N}.png");
        try
        {
            using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
            using var explain = model.Explain();
            var next = await explain.NextTokenAsync("And God said", 8, [0.5f, 1f, 2f]);
            var figure = ExplainPng.NextToken(next, file);
            using var image = SKBitmap.Decode(file);
            Assert.Equal(8, figure.Labels.Count);
            // The bars' group centres are the ticks, evenly spaced over the data area.
            var step = figure.Ticks[1] - figure.Ticks[0];
            for (var i = 1; i < figure.Ticks.Count; i++) Assert.Equal(step, figure.Ticks[i] - figure.Ticks[i - 1], 1.0);
            AssertLabelsFit(figure, image);

            // The legend is above the data area: the top strip of the data area over the last bars is the plot's background.
            var strip = Enumerable.Range(0, 40).Select(i => image.GetPixel((int)(figure.DataArea.Right - 150 + (i * 3)), (int)figure.DataArea.Top + 20));
            Assert.All(strip, p => Assert.True(p.Red > 200 && p.Green > 200 && p.Blue > 200, $"legend or bar at the top right of the data area: {p}"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Every slanted label lies whole inside the figure, under the data area and above the axis title, and is drawn where computed.</summary>
    private static void AssertLabelsFit(ExplainPng.Figure figure, SKBitmap image)
    {
        foreach (var box in figure.Labels)
        {
            Assert.True(box.Left >= 0 && box.Right <= image.Width && box.Bottom <= image.Height, $"label box {box} leaves the {image.Width}x{image.Height} figure");
            Assert.True(box.Top >= figure.DataArea.Bottom, $"label box {box} reaches into the data area {figure.DataArea}");
            Assert.True(box.Bottom <= figure.AxisTitle.Top, $"label box {box} runs into the axis title's band {figure.AxisTitle}");
            // The centre of the box is inside the slanted label: its light background or its text, never the figure's white.
            var centre = image.GetPixel((int)box.HorizontalCenter, (int)box.VerticalCenter);
            Assert.NotEqual(SKColors.White, centre);
        }
    }
}
