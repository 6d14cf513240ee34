using OnnxLM.Explain;
using ScottPlot;

namespace OnnxLM.Cli.Explain;

/// <summary>The block views as PNG images, drawn with ScottPlot.</summary>
internal static class BlockPng
{
    /// <summary>Per layer, the norms of the attention and MLP outputs at the last token, side by side; the ablation in the title.</summary>
    public static void Contributions(BlockContributions c, AblationResult a, string what, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var layers = c.AttentionNorms.Count;
        var attention = plot.Add.Bars((Bar[])[.. Enumerable.Range(0, layers).Select(i => new Bar { Position = i - 0.2, Value = c.AttentionNorms[i][^1], Size = 0.4, FillColor = palette.GetColor(0) })]);
        attention.LegendText = "attention block";
        var mlp = plot.Add.Bars((Bar[])[.. Enumerable.Range(0, layers).Select(i => new Bar { Position = i + 0.2, Value = c.MlpNorms[i][^1], Size = 0.4, FillColor = palette.GetColor(1) })]);
        mlp.LegendText = "MLP block";
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (var i = 0; i < layers; i++) ticks.AddMajor(i, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Margins(bottom: 0);
        plot.ShowLegend(Edge.Top);
        plot.Title($"what each block adds at \"{CliContext.Visible(c.Tokens[^1])}\" (embedding {c.EmbeddingNorms[^1]:F1})\n"
            + $"zeroing {what}: p(\"{CliContext.Visible(a.OriginalTop.Text)}\") {a.OriginalTop.Probability:P0} → {a.OriginalTopProbabilityAfter:P0}, KL {a.KlDivergenceBits:F2} bits");
        plot.XLabel("layer");
        plot.YLabel("norm of the block's output (‖·‖₂)");
        plot.SavePng(path, ExplainPng.Width, ExplainPng.Height);
    }

    /// <summary>The cosine histograms of random directions and of token embeddings on one range, the counts in the title.</summary>
    public static void Dimensions(DimensionsExplanation view, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var r = view.RandomDirections;
        var width = (r.HistogramMax - r.HistogramMin) / r.Histogram.Count;
        foreach (var (summary, label, colour, offset) in new[] { (r, $"random directions (sd {r.StandardDeviation:F3})", palette.GetColor(0), 0.25),
                     (view.TokenEmbeddings, $"token embeddings (sd {view.TokenEmbeddings.StandardDeviation:F3})", palette.GetColor(4), 0.75) })
        {
            var bars = plot.Add.Bars((Bar[])[.. summary.Histogram.Select((count, i) => new Bar
            {
                Position = summary.HistogramMin + ((i + offset) * width), Value = count, Size = width / 2, FillColor = colour,
            })]);
            bars.LegendText = label;
        }

        plot.ShowLegend(Edge.Top);
        plot.Axes.Margins(bottom: 0);
        var atLeast = view.NearlyOrthogonalAtWidth >= view.SearchLimit ? "≥ " : "";
        plot.Title($"cosines in {view.Width} dimensions (1/√{view.Width} = {1 / Math.Sqrt(view.Width):F3})\n"
            + $"directions with all |cos| < {view.Epsilon:0.###}: {atLeast}{view.NearlyOrthogonalAtWidth} in {view.Width}-D, {view.NearlyOrthogonalIn3D} in 3-D");
        plot.XLabel("cosine similarity");
        plot.YLabel("pairs");
        plot.SavePng(path, ExplainPng.Width, ExplainPng.Height);
    }

    /// <summary>Step time against context length with and without the cache, the fitted curves, and the memory on a second axis.</summary>
    public static void Cost(CostExplanation cost, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        double[] xs = [.. cost.Points.Select(p => (double)p.Length)];
        var max = xs.Max();
        double[] curve = [.. Enumerable.Range(0, 101).Select(i => i * max / 100)];
        double Fit(IReadOnlyList<double> c, double n) => c.Select((k, i) => k * Math.Pow(n, i)).Sum();
        void Series(double[] ys, IReadOnlyList<double> fit, string label, Color colour)
        {
            var points = plot.Add.ScatterPoints(xs, ys);
            points.Color = colour;
            points.MarkerSize = 9;
            points.LegendText = label;
            var line = plot.Add.ScatterLine(curve, [.. curve.Select(n => Fit(fit, n))]);
            line.Color = colour;
            line.LinePattern = LinePattern.Dashed;
            line.LegendText = "fit: " + ExplainCommand.FitText(fit);
        }

        Series([.. cost.Points.Select(p => p.CachedStepMs)], cost.CachedFit, "one step with the KV cache", palette.GetColor(0));
        Series([.. cost.Points.Select(p => p.RecomputeStepMs)], cost.RecomputeFit, "the same step recomputing the prefix", palette.GetColor(3));
        var scores = plot.Add.ScatterLine(xs, [.. cost.Points.Select(p => p.RecomputeScoreBytes / 1048576.0)]);
        scores.Color = palette.GetColor(2);
        scores.LegendText = "attention scores recomputing (MiB, right axis)";
        scores.Axes.YAxis = plot.Axes.Right;
        var cache = plot.Add.ScatterLine(xs, [.. cost.Points.Select(p => p.KvCacheBytes / 1048576.0)]);
        cache.Color = palette.GetColor(1);
        cache.LegendText = "KV cache (MiB, right axis)";
        cache.Axes.YAxis = plot.Axes.Right;
        plot.Axes.Right.Label.Text = "MiB";
        plot.ShowLegend(Alignment.UpperLeft);
        plot.Title($"one decoding step against context length (KV cache {cost.BytesPerToken:N0} bytes per token)");
        plot.XLabel("context length n (tokens)");
        plot.YLabel("milliseconds");
        plot.SavePng(path, ExplainPng.Width, ExplainPng.Height);
    }
}
