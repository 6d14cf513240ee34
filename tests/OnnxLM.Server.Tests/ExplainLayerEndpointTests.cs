using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using SkiaSharp;

namespace OnnxLM.Server.Tests;

/// <summary>/explain/lens, /explain/heads, /explain/qk on kjv-tiny, and the playground's "Inside the layers" in a real browser.</summary>
public sealed class ExplainLayerEndpointTests : IAsyncLifetime
{
    private const string Prompt = "And the LORD spake unto Moses, saying";
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private LanguageModel _reference = null!;

    public async Task InitializeAsync()
    {
        (_app, _http) = await ServerTests.StartAsync(o => o.MaxExplainTextLength = 400);
        _reference = LanguageModel.Load(ServerTests.Model);
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
    public async Task TheEndpointsReturnTheApisViewsAndBoundTheirInput()
    {
        using var explain = _reference.Explain();
        var lens = await explain.LensAsync(Prompt, 3);
        var shown = await PostAsync("/explain/lens", new { text = Prompt, top = 3 });
        Assert.Equal(lens.Final.Select(f => f.Id), shown.GetProperty("final").EnumerateArray().Select(f => f.GetProperty("id").GetInt32()));
        Assert.Equal(lens.Layers[5][2].FinalTokenProbability, shown.GetProperty("layers")[5][2].GetProperty("finalTokenProbability").GetDouble(), 12);

        var heads = await explain.HeadsAsync(Prompt);
        var layer3 = await PostAsync("/explain/heads", new { text = Prompt, layer = 3 });
        Assert.Equal(heads.Heads.Where(h => h.Layer == 3).Select(h => h.PreviousToken), layer3.GetProperty("heads").EnumerateArray().Select(h => h.GetProperty("previousToken").GetDouble()));
        Assert.Equal(heads.Attention[3, 7, 4, 2], layer3.GetProperty("weights")[7][4][2].GetSingle());

        var scores = await explain.QueryKeyAsync(Prompt, 2, 4);
        var qk = await PostAsync("/explain/qk", new { text = Prompt, layer = 2, query = 4 });
        Assert.Equal(scores.Raw[6][3], qk.GetProperty("raw")[6][3].GetSingle());
        Assert.Equal(JsonValueKind.Null, qk.GetProperty("mask")[5].ValueKind);

        var tooLong = await PostAsync("/explain/lens", new { text = new string('a', 401) }, HttpStatusCode.BadRequest);
        Assert.Equal("text", tooLong.GetProperty("error").GetProperty("param").GetString());
        var layer = await PostAsync("/explain/qk", new { text = Prompt, layer = 8 }, HttpStatusCode.BadRequest);
        Assert.Equal("layer", layer.GetProperty("error").GetProperty("param").GetString());
        var query = await PostAsync("/explain/qk", new { text = Prompt, query = 40 }, HttpStatusCode.BadRequest);
        Assert.Contains("query", query.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        await PostAsync("/explain/heads", new { layer = 0 }, HttpStatusCode.BadRequest);
    }

    private Task<string> ChromiumAsync(string chromium, string action, string query) =>
        HeadlessChromium.RunAsync(chromium, action, new Uri(_http.BaseAddress!, query), 1700);

    private static string Data(string dom, string name)
    {
        var body = dom[dom.IndexOf("<body", StringComparison.Ordinal)..dom.IndexOf('>', dom.IndexOf("<body", StringComparison.Ordinal))];
        return Regex.Match(body, $"data-{name}=\"([^\"]*)\"").Groups[1].Value;
    }

    /// <summary>The page's heat colour, hsl(120·p, 70%, 80%), in RGB.</summary>
    private static (int R, int G, int B) Heat(double p)
    {
        var hue = 120 * Math.Clamp(p, 0, 1) / 60;
        const double C = 0.4 * 0.7, M = 0.8 - (C / 2);
        var x = C * (1 - Math.Abs((hue % 2) - 1));
        var (r, g) = hue < 1 ? (C, x) : (x, C);
        return ((int)Math.Round((r + M) * 255), (int)Math.Round((g + M) * 255), (int)Math.Round(M * 255));
    }

    [SkippableFact]
    public async Task ThePlaygroundStepsThroughTheLayersAndFollowsTheSelectedToken()
    {
        var chromium = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
        Skip.If(chromium is null, "no chromium browser installed (apt-get install chromium)");
        const string Page = "/?prompt=And%20the%20LORD%20spake%20unto%20Moses%2C%20saying&lens_layer=4&query=5";
        using var explain = _reference.Explain();
        var lens = await explain.LensAsync(Prompt, 3);
        var n = lens.Tokens.Count;

        var dom = await ChromiumAsync(chromium!, "--dump-dom", Page);
        Assert.Equal("1", Data(dom, "layers-ready"));
        Assert.Equal("1", Data(dom, "ready")); // the panels above the lens are drawn, so its box is where the screenshot has it
        Assert.Equal((lens.Layers.Count).ToString(CultureInfo.InvariantCulture), Data(dom, "lens-layers"));
        Assert.Equal("4", Data(dom, "lens-layer"));
        Assert.Equal(lens.Layers[4][^1].Top[0].Text, WebUtility.HtmlDecode(Data(dom, "lens-guess")));
        Assert.Equal(lens.Layers[4][^1].FinalTokenProbability, double.Parse(Data(dom, "lens-final-p"), CultureInfo.InvariantCulture), 5);
        Assert.Equal(n, Regex.Matches(dom, "class=\"lens-cell( selected)?\"").Count);
        Assert.Single(Regex.Matches(dom, "class=\"lens-cell selected\""));
        // The selected token (position 5) drives the heads and the query·key row: its weights sum to 1, the later keys are masked.
        Assert.Equal("5", Data(dom, "query"));
        Assert.Equal("5", Data(dom, "qk-query"));
        Assert.Equal("5", Data(dom, "heads-query"));
        Assert.Equal(1.0, double.Parse(Data(dom, "qk-sum"), CultureInfo.InvariantCulture), 4);
        Assert.Equal((n - 1 - 5).ToString(CultureInfo.InvariantCulture), Data(dom, "qk-masked"));
        Assert.Equal(_reference.Info.AttentionHeadCount.ToString(CultureInfo.InvariantCulture), Data(dom, "heads-count"));
        Assert.Equal(3, Regex.Matches(Section(dom, "layers"), "What you are seeing:").Count);
        Assert.Equal(_reference.Info.AttentionHeadCount, Regex.Matches(dom, "<figcaption[^>]*>head \\d+: ").Count);

        // In a screenshot at the same size, the selected box is filled with the heat colour of its probability and outlined in red.
        var box = Data(dom, "lens-box").Split(',').Select(int.Parse).ToArray();
        var expected = Heat(lens.Layers[4][5].FinalTokenProbability);
        var shot = Path.Combine(Path.GetTempPath(), $"onnxlm-layers-{Guid.NewGuid():N}.png");
        try
        {
            await ChromiumAsync(chromium!, $"--screenshot={shot}", Page);
            using var image = SKBitmap.Decode(shot);
            Assert.Equal((1280, 1700), (image.Width, image.Height));
            var inside = image.GetPixel(box[0] + 3, box[1] + (box[3] / 2));
            Assert.True(Math.Abs(inside.Red - expected.R) <= 3 && Math.Abs(inside.Green - expected.G) <= 3 && Math.Abs(inside.Blue - expected.B) <= 3, $"box fill {inside}, expected {expected}");
            var outline = image.GetPixel(box[0] - 2, box[1] + (box[3] / 2));
            Assert.True(outline.Red > 180 && outline.Green < 90 && outline.Blue < 90, $"outline {outline}");
        }
        finally
        {
            File.Delete(shot);
        }
    }

    /// <summary>The markup of one section of the page (the playground has several, each with its own panels).</summary>
    private static string Section(string dom, string id)
    {
        var start = dom.IndexOf($"<section id=\"{id}\"", StringComparison.Ordinal);
        Assert.True(start >= 0, $"no section '{id}' in the page");
        return dom[start..dom.IndexOf("</section>", start, StringComparison.Ordinal)];
    }
}
