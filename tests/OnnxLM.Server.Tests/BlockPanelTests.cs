using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using OnnxLM.Explain;
using SkiaSharp;

namespace OnnxLM.Server.Tests;

/// <summary>The block views over HTTP (/explain/contributions, /explain/dimensions, /explain/cost) and their playground panels in a real browser.</summary>
public sealed class BlockPanelTests : IAsyncLifetime
{
    private const string Page = "/?prompt=the%20children%20of&cost=16";
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private LanguageModel _reference = null!;

    public async Task InitializeAsync()
    {
        (_app, _http) = await ServerTests.StartAsync();
        _reference = LanguageModel.Load(ServerTests.Model, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.DisposeAsync();
        _reference.Dispose();
    }

    private Task<JsonElement> PostAsync(string path, object body, HttpStatusCode expected = HttpStatusCode.OK) =>
        ServerTests.PostJsonAsync(_http, path, body, expected);

    [Fact]
    public async Task EndpointsAnswerWhatTheLibraryComputes()
    {
        using var explain = _reference.Explain();
        var view = await PostAsync("/explain/contributions", new { text = "the children of", layer = 3, head = 2, top = 4 });
        var expected = await explain.AblateAsync("the children of", 3, 2, 4);
        var ablation = view.GetProperty("ablation");
        Assert.Equal(expected.KlDivergenceBits, ablation.GetProperty("klDivergenceBits").GetDouble(), 9);
        Assert.Equal(" Israel", ablation.GetProperty("originalTop").GetProperty("text").GetString());
        Assert.Equal(expected.After.Select(t => t.Id), ablation.GetProperty("after").EnumerateArray().Select(t => t.GetProperty("id").GetInt32()));
        var contributions = await explain.ContributionsAsync("the children of");
        var norms = view.GetProperty("contributions").GetProperty("mlpNorms");
        Assert.Equal(contributions.MlpNorms.Count, norms.GetArrayLength());
        Assert.Equal(contributions.MlpNorms[5][^1], norms[5][contributions.Tokens.Count - 1].GetDouble(), 9);

        var dimensions = await PostAsync("/explain/dimensions", new { epsilon = 0.1 });
        var reference = explain.Dimensions(2000, 0.1, 0);
        Assert.Equal(reference.NearlyOrthogonalAtWidth, dimensions.GetProperty("nearlyOrthogonalAtWidth").GetInt32());
        Assert.Equal(reference.RandomDirections.StandardDeviation, dimensions.GetProperty("randomDirections").GetProperty("standardDeviation").GetDouble(), 12);

        var cost = await PostAsync("/explain/cost", new { max_length = 16, repeats = 1 });
        var points = cost.GetProperty("points").EnumerateArray().ToList();
        Assert.Equal([4, 8, 16], points.Select(p => p.GetProperty("length").GetInt32()));
        Assert.All(points, p => Assert.Equal((p.GetProperty("length").GetInt32() + 1) * _reference.Info.KvCacheBytesPerToken, p.GetProperty("kvCacheBytes").GetInt64()));
        Assert.Equal(3, cost.GetProperty("recomputeFit").GetArrayLength());
    }

    [Fact]
    public async Task EndpointsRefuseBadInputNamingTheField()
    {
        var e = await PostAsync("/explain/contributions", new { text = "the children of", head = _reference.Info.AttentionHeadCount }, HttpStatusCode.BadRequest);
        Assert.Equal("head", e.GetProperty("error").GetProperty("param").GetString());
        e = await PostAsync("/explain/contributions", new { layer = 0 }, HttpStatusCode.BadRequest);
        Assert.Equal("text", e.GetProperty("error").GetProperty("param").GetString());
        e = await PostAsync("/explain/dimensions", new { epsilon = 1.5 }, HttpStatusCode.BadRequest);
        Assert.Equal("epsilon", e.GetProperty("error").GetProperty("param").GetString());
        e = await PostAsync("/explain/cost", new { max_length = _reference.Info.ContextLength }, HttpStatusCode.BadRequest);
        Assert.Equal("max_length", e.GetProperty("error").GetProperty("param").GetString());
    }

    [SkippableFact]
    public async Task ThePanelsSayWhatTheyShowWithTheLibrarysNumbers()
    {
        var chromium = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
        Skip.If(chromium is null, "no chromium browser installed (apt-get install chromium)");
        var dom = "";
        for (var attempt = 0; attempt < 3 && Data(dom, "cost") is null; attempt++) dom = await ChromiumAsync(chromium!, "--dump-dom", Page);
        using var explain = _reference.Explain();
        var ablation = await explain.AblateAsync("the children of", 7);
        var blocks = dom[dom.IndexOf("<section id=\"blocks\"", StringComparison.Ordinal)..];
        Assert.Equal(3, Regex.Matches(blocks[..blocks.IndexOf("</section>", StringComparison.Ordinal)], "<p class=\"what\">What you are seeing: ").Count);
        Assert.Equal(_reference.Info.LayerCount.ToString(CultureInfo.InvariantCulture), Data(dom, "contributions"));
        Assert.Equal("7", Data(dom, "ablation-layer")); // the busiest MLP at the last token
        Assert.Equal(" Israel", Data(dom, "ablation-top"));
        Assert.Equal(ablation.KlDivergenceBits, double.Parse(Data(dom, "ablation-kl")!, CultureInfo.InvariantCulture), 5);
        Assert.Equal(ablation.OriginalTopProbabilityAfter, double.Parse(Data(dom, "ablation-after")!, CultureInfo.InvariantCulture), 5);
        Assert.Equal(explain.Dimensions(2000, 0.1, 0).NearlyOrthogonalIn3D.ToString(CultureInfo.InvariantCulture), Data(dom, "dimensions-in3d"));
        Assert.Equal("3", Data(dom, "cost")); // 4, 8, 16 tokens
        var scores = Data(dom, "cost-scores")!.Split(',').Select(long.Parse).ToArray();
        Assert.Equal([.. new[] { 4, 8, 16 }.Select(n => (long)_reference.Info.LayerCount * _reference.Info.AttentionHeadCount * (n + 1) * (n + 1) * 4)], scores);
    }

    [SkippableFact]
    public async Task TheContributionBarsInAScreenshotHaveTheLibrarysProportions()
    {
        var chromium = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
        Skip.If(chromium is null, "no chromium browser installed (apt-get install chromium)");
        var shot = Path.Combine(Path.GetTempPath(), $"onnxlm-blocks-{Guid.NewGuid():N}.png");
        try
        {
            await ChromiumAsync(chromium!, $"--screenshot={shot}", "/?prompt=the%20children%20of");
            using var image = SKBitmap.Decode(shot);
            SKColor[] colours = [new(0x3b, 0x82, 0xf6), new(0xf9, 0x73, 0x16)]; // attention blue, MLP orange
            int Kind(int x, int y) => Near(image.GetPixel(x, y), colours[0]) ? 0 : Near(image.GetPixel(x, y), colours[1]) ? 1 : -1;

            // Found from the pixels alone: in the left column, the row crossing the most blue and orange is the bars' common baseline.
            var baseline = Enumerable.Range(600, image.Height - 600).MaxBy(y => Enumerable.Range(0, 640).Count(x => Kind(x, y) >= 0));
            var bars = new List<(int Kind, int X)>();
            for (var x = 0; x < 640; x++)
            {
                if (Kind(x, baseline) is var k and >= 0 && (x == 0 || Kind(x - 1, baseline) != k)) bars.Add((k, x));
            }

            Assert.Equal(2 * _reference.Info.LayerCount, bars.Count);
            Assert.Equal(Enumerable.Range(0, bars.Count).Select(i => i % 2), bars.Select(b => b.Kind)); // attention, MLP, layer by layer
            var heights = bars.Select(b =>
            {
                var h = 0;
                while (baseline - h >= 0 && Kind(b.X, baseline - h) == b.Kind) h++;
                return h;
            }).ToArray();

            using var explain = _reference.Explain();
            var contributions = await explain.ContributionsAsync("the children of");
            double[] norms = [.. Enumerable.Range(0, bars.Count).Select(i => i % 2 == 0 ? contributions.AttentionNorms[i / 2][^1] : contributions.MlpNorms[i / 2][^1])];
            var tallest = Array.IndexOf(norms, norms.Max());
            Assert.True(heights[tallest] > 150, $"the tallest bar is {heights[tallest]} pixels");
            for (var i = 0; i < bars.Count; i++)
            {
                Assert.True(Math.Abs(heights[i] - (heights[tallest] * norms[i] / norms[tallest])) <= 2.5,
                    $"bar {i}: {heights[i]} pixels, expected {heights[tallest] * norms[i] / norms[tallest]:F1} (norm {norms[i]:F2} of {norms[tallest]:F2})");
            }
        }
        finally
        {
            File.Delete(shot);
        }
    }

    private static bool Near(SKColor a, SKColor b) => Math.Abs(a.Red - b.Red) <= 6 && Math.Abs(a.Green - b.Green) <= 6 && Math.Abs(a.Blue - b.Blue) <= 6;

    /// <summary>The body's <c>data-NAME</c> attribute in a dumped DOM, or null.</summary>
    private static string? Data(string dom, string name)
    {
        var body = Regex.Match(dom, "<body([^>]*)>");
        var match = Regex.Match(body.Groups[1].Value, $" data-{name}=\"([^\"]*)\"");
        return match.Success ? WebUtility.HtmlDecode(match.Groups[1].Value) : null;
    }

    private Task<string> ChromiumAsync(string chromium, string action, string query) =>
        HeadlessChromium.RunAsync(chromium, action, new Uri(_http.BaseAddress!, query), 2800, 30000);
}
