using OnnxLM.Explain;
using ScottPlot;

namespace OnnxLM.Cli.Explain;

/// <summary>The explain views as PNG images, drawn with ScottPlot.</summary>
internal static class ExplainPng
{
    public const int Width = 1000;
    public const int Height = 800;

    /// <summary>An attention heatmap (rows: queries, columns: keys) with the tokens as tick labels; returns the data area in pixels.</summary>
    public static PixelRect Attention(float[][] weights, IReadOnlyList<string> tokens, string title, string path)
    {
        var n = tokens.Count;
        var data = new double[n, n];
        for (var q = 0; q < n; q++)
            for (var k = 0; k < n; k++) data[q, k] = weights[q][k];
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(data);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.Extent = new CoordinateRect(0, n, 0, n); // cell (q, k) spans x in [k, k+1], y in [n-1-q, n-q]: the first query at the top
        plot.Add.ColorBar(heatmap);
        Ticks(plot.Axes.Bottom, tokens, i => i + 0.5, rotate: true);
        Ticks(plot.Axes.Left, tokens, i => n - i - 0.5, rotate: false);
        plot.Axes.SetLimits(0, n, 0, n);
        plot.Title(title);
        plot.XLabel("key (attended to)");
        plot.YLabel("query (attending)");
        plot.SavePng(path, Width, Height);
        return plot.RenderManager.LastRender.DataRect;
    }

    private static void Ticks(IAxis axis, IReadOnlyList<string> labels, Func<int, double> at, bool rotate)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (var i = 0; i < labels.Count; i++) ticks.AddMajor(at(i), labels[i].Replace("\n", "⏎", StringComparison.Ordinal));
        axis.TickGenerator = ticks;
        if (rotate)
        {
            axis.TickLabelStyle.Rotation = 45;
            axis.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        }
    }

    /// <summary>Probability bars of the top tokens, one series per temperature.</summary>
    public static void NextToken(NextTokenExplanation next, string path)
    {
        var plot = new Plot();
        var reference = next.Temperatures.FirstOrDefault(t => t.Temperature == 1f) ?? next.Temperatures[^1];
        var tokens = reference.Top.Select(t => t.Id).ToList();
        var width = 0.8 / next.Temperatures.Count;
        var palette = new ScottPlot.Palettes.Category10();
        for (var s = 0; s < next.Temperatures.Count; s++)
        {
            var view = next.Temperatures[s];
            var byId = view.Top.ToDictionary(t => t.Id, t => t.Probability);
            var bars = tokens.Select((id, i) => new Bar { Position = i + ((s - ((next.Temperatures.Count - 1) / 2.0)) * width), Value = byId.GetValueOrDefault(id), Size = width, FillColor = palette.GetColor(s) }).ToList();
            var plottable = plot.Add.Bars(bars);
            plottable.LegendText = $"T = {view.Temperature:0.##}";
        }

        Ticks(plot.Axes.Bottom, [.. reference.Top.Select(t => t.Text)], i => i, rotate: true);
        plot.ShowLegend();
        plot.Axes.Margins(bottom: 0);
        plot.Title($"next token after \"{next.Prompt}\"");
        plot.YLabel("probability");
        plot.SavePng(path, Width, Height);
    }

    /// <summary>Bars of one value per labelled item (surprise per token, parameters per component, cosine histogram).</summary>
    public static void Bars(IReadOnlyList<string> labels, IReadOnlyList<double> values, string title, string yLabel, string path)
    {
        var plot = new Plot();
        plot.Add.Bars([.. values]);
        Ticks(plot.Axes.Bottom, labels, i => i, rotate: true);
        plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        plot.YLabel(yLabel);
        plot.SavePng(path, Width, Height);
    }

    /// <summary>Step time with the cache, recomputing the prefix, and prefill, against the sequence length.</summary>
    public static void Cache(CacheExplanation cache, string path)
    {
        var plot = new Plot();
        double[] xs = [.. cache.Timings.Select(t => (double)t.Length)];
        plot.Add.Scatter(xs, [.. cache.Timings.Select(t => t.CachedStepMs)]).LegendText = "one step with the cache";
        plot.Add.Scatter(xs, [.. cache.Timings.Select(t => t.RecomputeStepMs)]).LegendText = "one step recomputing the prefix";
        plot.Add.Scatter(xs, [.. cache.Timings.Select(t => t.PrefillMs)]).LegendText = "prefill of that length";
        plot.ShowLegend();
        plot.Title($"KV cache: {cache.BytesPerToken:N0} bytes per token");
        plot.XLabel("sequence length (tokens)");
        plot.YLabel("milliseconds");
        plot.SavePng(path, Width, Height);
    }
}
