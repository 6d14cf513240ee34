using OnnxLM.Explain;
using ScottPlot;

namespace OnnxLM.Cli.Explain;

/// <summary>The explain views as PNG images, drawn with ScottPlot.</summary>
internal static class ExplainPng
{
    public const int Width = 1000;
    public const int Height = 800;

    /// <summary>Where a figure's parts landed, in pixels: the data area, each bottom tick's x, its label's box, the band kept for the axis title.</summary>
    public sealed record Figure(PixelRect DataArea, IReadOnlyList<float> Ticks, IReadOnlyList<PixelRect> Labels, PixelRect AxisTitle);

    /// <summary>
    /// An attention heatmap (rows: queries, columns: keys) with the tokens as tick labels, each on its cell's centre;
    /// returns where the data area and the key labels landed.
    /// </summary>
    public static Figure Attention(float[][] weights, IReadOnlyList<string> tokens, string title, string path)
    {
        var n = tokens.Count;
        var data = new double[n, n];
        for (var q = 0; q < n; q++)
            for (var k = 0; k < n; k++) data[q, k] = weights[q][k];
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(data);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        // Rectangle sets the cells' outer edges (Extent would set the centres of the edge cells, leaving them half outside the axes):
        // cell (q, k) spans x in [k, k+1], y in [n-1-q, n-q], the first query at the top.
        heatmap.Rectangle = new CoordinateRect(0, n, 0, n);
        plot.Add.ColorBar(heatmap);
        Func<int, double> key = i => i + 0.5;
        TickLabels.Apply(plot.Axes.Bottom, tokens, key, tokens: true);
        TickLabels.Apply(plot.Axes.Left, tokens, i => n - i - 0.5, tokens: true);
        plot.Axes.SetLimits(0, n, 0, n);
        plot.Title(title);
        plot.XLabel("key (attended to)");
        plot.YLabel("query (attending)");
        return Save(plot, tokens, key, tokens: true, path);
    }

    /// <summary>Probability bars of the top tokens, one series per temperature, the legend above the bars.</summary>
    public static Figure NextToken(NextTokenExplanation next, string path)
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

        Func<int, double> at = i => i;
        TickLabels.Apply(plot.Axes.Bottom, [.. reference.Top.Select(t => t.Text)], at, tokens: true);
        // A legend inside the data area covers whichever bars sit under it; above the axes it covers none.
        plot.ShowLegend(Edge.Top);
        plot.Axes.Margins(bottom: 0);
        plot.Title($"next token after \"{next.Prompt}\"");
        plot.YLabel("probability");
        return Save(plot, [.. reference.Top.Select(t => t.Text)], at, tokens: true, path);
    }

    /// <summary>Bars of one value per labelled item (surprise per token, parameters per component, cosine histogram); <paramref name="tokens"/> when the labels are tokens.</summary>
    public static Figure Bars(IReadOnlyList<string> labels, IReadOnlyList<double> values, string title, string yLabel, bool tokens, string path)
    {
        var plot = new Plot();
        plot.Add.Bars([.. values]);
        Func<int, double> at = i => i;
        TickLabels.Apply(plot.Axes.Bottom, labels, at, tokens);
        plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        plot.YLabel(yLabel);
        return Save(plot, labels, at, tokens, path);
    }

    /// <summary>
    /// Reserves room for the slanted bottom labels (below the axes, then the axis title; on the left, for the first labels'
    /// overhang), renders until they fit, and writes the PNG.
    /// </summary>
    public static Figure Save(Plot plot, IReadOnlyList<string> labels, Func<int, double> at, bool tokens, string path)
    {
        var bottom = plot.Axes.Bottom;
        var titleHeight = string.IsNullOrEmpty(bottom.Label.Text) ? 0 : bottom.Label.FontSize * 1.6f;
        PixelRect area;
        IReadOnlyList<PixelRect> boxes;
        var attempts = 0;
        while (true)
        {
            plot.RenderInMemory(Width, Height);
            area = plot.RenderManager.LastRender.DataRect;
            boxes = TickLabels.Boxes(bottom, labels, at, tokens, area);
            var below = boxes.Count == 0 ? 0 : boxes.Max(b => b.Bottom) - area.Bottom;
            var overhang = boxes.Count == 0 ? 0 : TickLabels.Margin - boxes.Min(b => b.Left);
            var fits = bottom.MinimumSize >= below + titleHeight + (2 * TickLabels.Margin) - 0.5f && overhang <= 0;
            if (fits || ++attempts > 4) break;
            bottom.MinimumSize = Math.Max(bottom.MinimumSize, below + titleHeight + (2 * TickLabels.Margin));
            if (overhang > 0) plot.Axes.Left.MinimumSize = area.Left + overhang;
        }

        plot.SavePng(path, Width, Height);
        var ticks = labels.Select((_, i) => bottom.GetPixel(at(i), area)).ToList();
        return new Figure(area, ticks, boxes, new PixelRect(area.Left, area.Right, Height - titleHeight - TickLabels.Margin, Height));
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
