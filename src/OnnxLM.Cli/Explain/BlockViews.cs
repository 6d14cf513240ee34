using System.CommandLine;
using System.Globalization;
using OnnxLM.Explain;
using Spectre.Console;

namespace OnnxLM.Cli.Explain;

/// <summary><c>onnxlm explain contributions|dimensions|cost</c>: what the blocks add to the residual stream, near-orthogonality, the cost of context.</summary>
internal static partial class ExplainCommand
{
    private static void AddBlockViews(Command command, CliContext cli)
    {
        command.Subcommands.Add(Contributions(cli));
        command.Subcommands.Add(Dimensions(cli));
        command.Subcommands.Add(Cost(cli));
    }

    /// <summary>The contributions view and the ablation it runs, as one JSON object.</summary>
    private sealed record ContributionsView(BlockContributions Contributions, AblationResult Ablation);

    private static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);

    private static Command Contributions(CliContext cli)
    {
        var text = TextArgument("prompt");
        var layer = new Option<int?>("--layer") { Description = "The layer to zero (default: the one whose MLP moves the last token most)" };
        var head = new Option<int?>("--head") { Description = "Zero this attention head of the layer instead of its MLP" };
        var top = new Option<int>("--top") { Description = "Next tokens to show before and after", DefaultValueFactory = _ => 5 };
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("contributions", "How much each layer's attention and MLP move the residual stream, and what zeroing one MLP or head does to the next token") { text, layer, head, top, json, png };
        Action(command, cli, json, png, async (p, e, model, ct) =>
        {
            var prompt = cli.ReadText(p.GetValue(text), "prompt");
            if (p.GetValue(layer) is < 0 || p.GetValue(layer) >= model.Info.LayerCount) throw new UsageException($"--layer must be between 0 and {model.Info.LayerCount - 1}.");
            var h = p.GetValue(head);
            if (h is < 0 || h >= model.Info.AttentionHeadCount) throw new UsageException($"--head must be between 0 and {model.Info.AttentionHeadCount - 1}.");
            var view = await e.ContributionsAsync(prompt, ct);
            var l = p.GetValue(layer) ?? Enumerable.Range(0, view.MlpNorms.Count).MaxBy(i => view.MlpNorms[i][^1]);
            return new ContributionsView(view, await e.AblateAsync(prompt, l, h, p.GetValue(top), ct));
        }, (view, console) =>
        {
            var c = view.Contributions;
            console.MarkupLine($"[bold]What each block adds to the residual stream[/] [grey](norms at the last token, {Markup.Escape(CliContext.Visible(c.Tokens[^1]))}; the embedding's is {F(c.EmbeddingNorms[^1], "F2")})[/]");
            var max = c.AttentionNorms.Concat(c.MlpNorms).Max(n => n[^1]);
            var table = new Table().AddColumns("layer", "attention", "", "MLP", "", "stream after").Border(TableBorder.Simple);
            for (var i = 0; i < c.AttentionNorms.Count; i++)
            {
                string Bar(double v, string colour) => $"[{colour}]{new string('█', (int)Math.Round(20 * v / max))}[/]";
                table.AddRow(new Text(i.ToString(CultureInfo.InvariantCulture)), new Text(F(c.AttentionNorms[i][^1], "F2")), new Markup(Bar(c.AttentionNorms[i][^1], "deepskyblue1")),
                    new Text(F(c.MlpNorms[i][^1], "F2")), new Markup(Bar(c.MlpNorms[i][^1], "orange1")), new Text(F(c.ResidualNorms[i][^1], "F2")));
            }

            console.Write(table);
            var a = view.Ablation;
            console.MarkupLine($"[bold]Zeroing {Markup.Escape(What(a))}[/]: KL {F(a.KlDivergenceBits, "F3")} bits; p({Markup.Escape(CliContext.Visible(a.OriginalTop.Text))}) {F(a.OriginalTop.Probability, "P1")} → {F(a.OriginalTopProbabilityAfter, "P1")}");
            var next = new Table().AddColumns("before", "p", "after", "p").Border(TableBorder.Simple);
            for (var i = 0; i < Math.Max(a.Before.Count, a.After.Count); i++)
            {
                next.AddRow(i < a.Before.Count ? CliContext.Visible(a.Before[i].Text) : "", i < a.Before.Count ? F(a.Before[i].Probability, "P1") : "",
                    i < a.After.Count ? CliContext.Visible(a.After[i].Text) : "", i < a.After.Count ? F(a.After[i].Probability, "P1") : "");
            }

            console.Write(next);
        }, (view, file) => BlockPng.Contributions(view.Contributions, view.Ablation, What(view.Ablation), file));
        return command;
    }

    private static string What(AblationResult a) => a.Head is { } h ? $"layer {a.Layer}, head {h}" : $"layer {a.Layer}'s MLP";

    private static Command Dimensions(CliContext cli)
    {
        var epsilon = new Option<double>("--epsilon") { Description = "\"Nearly orthogonal\": every pairwise |cosine| below this", DefaultValueFactory = _ => 0.1 };
        var pairs = new Option<int>("--pairs") { Description = "Pairs sampled for each cosine distribution", DefaultValueFactory = _ => 2000 };
        var seed = new Option<int>("--seed") { Description = "Seed of every random draw", DefaultValueFactory = _ => 0 };
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("dimensions", "Near-orthogonality at the model's width: cosines of random directions and of token embeddings, and how many nearly orthogonal directions fit") { epsilon, pairs, seed, json, png };
        Action(command, cli, json, png, (p, e, _, _) =>
        {
            var eps = p.GetValue(epsilon);
            if (!(eps is > 0 and < 1)) throw new UsageException("--epsilon must be between 0 and 1.");
            if (p.GetValue(pairs) < 1) throw new UsageException("--pairs must be at least 1.");
            return Task.FromResult(e.Dimensions(p.GetValue(pairs), eps, p.GetValue(seed)));
        }, (view, console) =>
        {
            console.MarkupLine($"[bold]{view.Width} dimensions[/] (the residual stream's width)");
            console.MarkupLine($"random directions: cosine mean {F(view.RandomDirections.Mean, "F4")}, sd {F(view.RandomDirections.StandardDeviation, "F4")} (1/√{view.Width} = {F(1 / Math.Sqrt(view.Width), "F4")})");
            console.MarkupLine($"token embeddings:  cosine mean {F(view.TokenEmbeddings.Mean, "F4")}, sd {F(view.TokenEmbeddings.StandardDeviation, "F4")}");
            var atLeast = view.NearlyOrthogonalAtWidth >= view.SearchLimit ? "at least " : "";
            console.MarkupLine($"directions with every pairwise |cosine| < {F(view.Epsilon, "0.###")} (angles within {F(90 - (Math.Acos(view.Epsilon) * 180 / Math.PI), "F1")}° of 90°), found by a greedy random search:");
            console.MarkupLine($"  {atLeast}{view.NearlyOrthogonalAtWidth} in {view.Width} dimensions, {view.NearlyOrthogonalIn3D} in 3; the Johnson–Lindenstrauss lemma guarantees {F(view.JohnsonLindenstraussAtWidth, "F1")}");
            var chart = new BarChart().Width(90).Label("cosine histogram: random directions (blue) and token embeddings (purple)");
            var r = view.RandomDirections;
            for (var i = 0; i < r.Histogram.Count; i++)
            {
                if (r.Histogram[i] == 0 && view.TokenEmbeddings.Histogram[i] == 0) continue;
                var from = F(r.HistogramMin + (i * (r.HistogramMax - r.HistogramMin) / r.Histogram.Count), "+0.00;-0.00");
                chart.AddItem($"{from} random", r.Histogram[i], Color.DeepSkyBlue1);
                chart.AddItem($"{from} tokens", view.TokenEmbeddings.Histogram[i], Color.MediumPurple1);
            }

            console.Write(chart);
        }, BlockPng.Dimensions);
        return command;
    }

    private static Command Cost(CliContext cli)
    {
        var lengths = new Option<string?>("--lengths") { Description = "Comma-separated context lengths (at least three; default 8 … 1,024 below the context length)" };
        var repeats = new Option<int>("--repeats") { Description = "Runs per measurement (the fastest counts)", DefaultValueFactory = _ => 5 };
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("cost", "Time and memory of one step against context length, with the KV cache and recomputing without it (the quadratic term)") { lengths, repeats, json, png };
        Action(command, cli, json, png, (p, e, _, ct) =>
        {
            var list = p.GetValue(lengths)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(t => int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new UsageException($"--lengths: '{t}' is not a whole number.")).ToList();
            if (p.GetValue(repeats) < 1) throw new UsageException("--repeats must be at least 1.");
            try
            {
                return e.CostAsync(list, p.GetValue(repeats), ct);
            }
            catch (ArgumentException ex)
            {
                throw new UsageException("--lengths: " + ex.Message);
            }
        }, (view, console) =>
        {
            console.MarkupLine($"KV cache: {view.BytesPerToken:N0} bytes per token");
            var table = new Table().AddColumns("length", "step with cache (ms)", "step recomputing (ms)", "KV cache", "scores with cache", "scores recomputing").Border(TableBorder.Simple);
            foreach (var t in view.Points)
            {
                table.AddRow(t.Length.ToString(CultureInfo.InvariantCulture), F(t.CachedStepMs, "F2"), F(t.RecomputeStepMs, "F2"), Bytes(t.KvCacheBytes), Bytes(t.CachedScoreBytes), Bytes(t.RecomputeScoreBytes));
            }

            console.Write(table);
            console.MarkupLine($"fit with the cache:  {FitText(view.CachedFit)}");
            console.MarkupLine($"fit recomputing:     {FitText(view.RecomputeFit)}");
        }, BlockPng.Cost);
        return command;
    }

    /// <summary>A fit's coefficients as "a + b·n + c·n²" in milliseconds.</summary>
    internal static string FitText(IReadOnlyList<double> fit) =>
        string.Concat(fit.Select((c, i) => (i == 0 ? F(c, "G3") : (c < 0 ? " − " : " + ") + F(Math.Abs(c), "G3")) + (i switch { 0 => " ms", 1 => "·n", _ => "·n²" })));

    internal static string Bytes(long bytes) => bytes switch
    {
        >= 1 << 20 => F(bytes / 1048576.0, "F1") + " MiB",
        >= 1 << 10 => F(bytes / 1024.0, "F1") + " KiB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " B",
    };
}
