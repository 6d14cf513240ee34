using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OnnxLM.Explain;
using ScottPlot;
using Spectre.Console;

namespace OnnxLM.Cli.Explain;

/// <summary>
/// <c>onnxlm explain lens|heads|qk</c>: the logit lens, every head of a layer with its summary, and one query's dot
/// products before the softmax, as terminal tables, JSON (<c>--json</c>) and PNG images (<c>--png file</c>).
/// </summary>
internal static class LayerViews
{
    private static readonly JsonSerializerOptions Json = CliContext.SnakeCaseJson;

    /// <summary>Adds the three subcommands to <c>explain</c>.</summary>
    public static void AddTo(Command explain, CliContext cli)
    {
        explain.Subcommands.Add(Lens(cli));
        explain.Subcommands.Add(Heads(cli));
        explain.Subcommands.Add(QueryKey(cli));
    }

    private static Argument<string?> TextArgument() => new("text") { Description = "The prompt, or - to read standard input", Arity = ArgumentArity.ZeroOrOne };

    private static Option<bool> JsonOption() => new("--json") { Description = "Print the view as JSON" };

    private static Option<string?> PngOption() => new("--png") { Description = "Also draw the view into this PNG file" };

    private static Option<int?> LayerOption() => new("--layer") { Description = "The layer, from 0 (default: the last)" };

    private static void Run(Command command, CliContext cli, Func<ParseResult, ModelExplainer, LanguageModel, CancellationToken, Task<int>> body) =>
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            using var model = cli.LoadModel(parse);
            using var explainer = model.Explain();
            return await body(parse, explainer, model, ct);
        }));

    private static int Layer(ParseResult parse, Option<int?> option, int count)
    {
        var layer = parse.GetValue(option) ?? count - 1;
        return layer >= 0 && layer < count ? layer : throw new UsageException($"--layer must be between 0 and {count - 1}.");
    }

    private static Command Lens(CliContext cli)
    {
        var text = TextArgument();
        var top = new Option<int>("--top") { Description = "Tokens to keep per layer and position (in --json)", DefaultValueFactory = _ => 5 };
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("lens", "The logit lens: what each layer would predict next at each position, read through the final norm and the unembedding") { text, top, json, png };
        Run(command, cli, async (parse, explainer, _, ct) =>
        {
            var lens = await explainer.LensAsync(cli.ReadText(parse.GetValue(text), "text"), parse.GetValue(top), ct);
            if (parse.GetValue(json)) cli.Output.WriteLine(JsonSerializer.Serialize(lens, Json));
            else RenderLens(lens, cli.Console);
            if (parse.GetValue(png) is { } file)
            {
                LensPng(lens, file);
                cli.Error.WriteLine($"wrote {file}");
            }

            return 0;
        });
        return command;
    }

    private static string LayerName(int row) => row == 0 ? "embeddings" : $"after layer {row - 1}";

    private static void RenderLens(LogitLens lens, IAnsiConsole console)
    {
        console.MarkupLine("[bold]logit lens[/] [grey](columns: positions; rows: the model stopped after each layer; each cell: its top next token, brighter = more probability on the model's final prediction)[/]");
        var table = new Table().Border(TableBorder.Simple).AddColumn("");
        foreach (var token in lens.Tokens) table.AddColumn(new TableColumn(Markup.Escape(CliContext.Visible(token))));
        var colour = console.Profile.Capabilities.ColorSystem != ColorSystem.NoColors;
        for (var row = 0; row < lens.Layers.Count; row++)
        {
            var cells = new List<Spectre.Console.Rendering.IRenderable> { new Text(LayerName(row)) };
            foreach (var cell in lens.Layers[row])
            {
                var label = Markup.Escape(CliContext.Visible(cell.Top[0].Text));
                cells.Add(new Markup(colour ? $"[{ExplainCommand.Heat(cell.FinalTokenProbability)}]{label}[/]" : $"{label} {cell.FinalTokenProbability:0.00}"));
            }

            table.AddRow(cells);
        }

        console.Write(table);
        console.MarkupLine("[grey]final prediction per position:[/] " + Markup.Escape(string.Join("  ", lens.Final.Select(f => $"{CliContext.Visible(f.Text)} ({f.Probability:P0})"))));
    }

    private static Command Heads(CliContext cli)
    {
        var text = TextArgument();
        var layer = LayerOption();
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("heads", "Every head of a layer: its attention pattern and what it looks at (the previous token, the first token, the same word earlier), with its entropy") { text, layer, json, png };
        Run(command, cli, async (parse, explainer, _, ct) =>
        {
            var heads = await explainer.HeadsAsync(cli.ReadText(parse.GetValue(text), "text"), ct);
            var map = heads.Attention;
            var l = Layer(parse, layer, map.LayerCount);
            var summaries = heads.Heads.Where(h => h.Layer == l).ToList();
            if (parse.GetValue(json))
            {
                var weights = Enumerable.Range(0, map.HeadCount).Select(h => map.Head(l, h)).ToList();
                cli.Output.WriteLine(JsonSerializer.Serialize(new { tokens = map.Tokens, layers = map.LayerCount, layer = l, heads = summaries, weights }, Json));
            }
            else
            {
                cli.Console.MarkupLine($"[bold]layer {l}: {map.HeadCount} heads[/] [grey](each head's mean attention, over the tokens after the first, to the previous token, the first token and earlier copies of the same token; entropy: low = focused)[/]");
                var table = new Table().AddColumns("head", "previous token", "first token", "same token earlier", "entropy (bits)", "role").Border(TableBorder.Simple);
                foreach (var s in summaries)
                {
                    table.AddRow(s.Head.ToString(CultureInfo.InvariantCulture), s.PreviousToken.ToString("P0", CultureInfo.InvariantCulture), s.FirstToken.ToString("P0", CultureInfo.InvariantCulture),
                        s.SameTokenEarlier?.ToString("P0", CultureInfo.InvariantCulture) ?? "-", s.EntropyBits.ToString("F2", CultureInfo.InvariantCulture), Role(s));
                }

                cli.Console.Write(table);
            }

            if (parse.GetValue(png) is { } file)
            {
                HeadsPng(map, l, summaries, file);
                cli.Error.WriteLine($"wrote {file}");
            }

            return 0;
        });
        return command;
    }

    /// <summary>A plain-words label for the strongest pattern of a head when it holds at least 30% of the weight, else "spread out".</summary>
    internal static string Role(HeadSummary s)
    {
        var (weight, role) = new[] { (s.PreviousToken, "previous token"), (s.FirstToken, "first token"), (s.SameTokenEarlier ?? 0, "same token earlier") }.MaxBy(r => r.Item1);
        return weight >= 0.3 ? role : "spread out";
    }

    private static Command QueryKey(CliContext cli)
    {
        var text = TextArgument();
        var layer = LayerOption();
        var query = new Option<int?>("--query") { Description = "The query position, from 0 (default: the last token)" };
        var head = new Option<int>("--head") { Description = "The head to show in the terminal and PNG (--json has all)", DefaultValueFactory = _ => 0 };
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("qk", "One query's attention in numbers: the raw query·key dot products, the scaling, the mask and the softmax weights, key by key") { text, layer, query, head, json, png };
        Run(command, cli, async (parse, explainer, model, ct) =>
        {
            var l = Layer(parse, layer, model.Info.LayerCount);
            var h = parse.GetValue(head);
            if (h < 0 || h >= model.Info.AttentionHeadCount) throw new UsageException($"--head must be between 0 and {model.Info.AttentionHeadCount - 1}.");
            var scores = await explainer.QueryKeyAsync(cli.ReadText(parse.GetValue(text), "text"), l, parse.GetValue(query), ct);
            if (parse.GetValue(json)) cli.Output.WriteLine(JsonSerializer.Serialize(scores, Json));
            else
            {
                cli.Console.MarkupLine($"[bold]layer {l}, head {h}, query {scores.Query} ({Markup.Escape(CliContext.Visible(scores.Tokens[scores.Query]))})[/] " +
                    $"[grey](each key: q·k, times the scale {scores.Scale:G4}, plus the mask, then the softmax turns the row into weights that sum to 1)[/]");
                var table = new Table().AddColumns("key", "token", "q·k", $"× {scores.Scale:G3}", "+ mask", "softmax").Border(TableBorder.Simple);
                for (var k = 0; k < scores.Tokens.Count; k++)
                {
                    var masked = scores.Mask[k] is null;
                    table.AddRow(k.ToString(CultureInfo.InvariantCulture), CliContext.Visible(scores.Tokens[k]), scores.Raw[h][k].ToString("F3", CultureInfo.InvariantCulture),
                        scores.Scaled[h][k].ToString("F3", CultureInfo.InvariantCulture), masked ? "−∞ (future)" : "0", masked ? "0" : scores.Weights[h][k].ToString("F4", CultureInfo.InvariantCulture));
                }

                cli.Console.Write(table);
            }

            if (parse.GetValue(png) is { } file)
            {
                QueryKeyPng(scores, h, file);
                cli.Error.WriteLine($"wrote {file}");
            }

            return 0;
        });
        return command;
    }

    /// <summary>Layers × positions, coloured by the probability each layer gives the final prediction, each cell labelled with its top token.</summary>
    internal static ExplainPng.Figure LensPng(LogitLens lens, string path)
    {
        var (rows, n) = (lens.Layers.Count, lens.Tokens.Count);
        var data = new double[rows, n];
        for (var r = 0; r < rows; r++)
            for (var p = 0; p < n; p++) data[rows - 1 - r, p] = lens.Layers[r][p].FinalTokenProbability; // the last layer at the top
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(data);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.Rectangle = new CoordinateRect(0, n, 0, rows);
        plot.Add.ColorBar(heatmap).Label = "p(final prediction)";
        for (var r = 0; r < rows; r++)
        {
            for (var p = 0; p < n; p++)
            {
                var label = plot.Add.Text(TickLabels.Text(lens.Layers[r][p].Top[0].Text, tokens: true), p + 0.5, r + 0.5);
                label.LabelAlignment = Alignment.MiddleCenter;
                label.LabelFontSize = Math.Clamp(160f / n, 8, 14);
                label.LabelFontColor = lens.Layers[r][p].FinalTokenProbability > 0.6 ? Colors.Black : Colors.White;
            }
        }

        Func<int, double> at = i => i + 0.5;
        TickLabels.Apply(plot.Axes.Left, [.. Enumerable.Range(0, rows).Select(LayerName)], r => r + 0.5, tokens: false);
        TickLabels.Apply(plot.Axes.Bottom, lens.Tokens, at, tokens: true);
        plot.Axes.SetLimits(0, n, 0, rows);
        plot.Title("logit lens: each layer's guess for the next token");
        plot.XLabel("position (the token read last)");
        return ExplainPng.Save(plot, lens.Tokens, at, tokens: true, path);
    }

    /// <summary>Small multiples: every head of a layer as a heatmap (future keys grey: the causal mask), titled with its role.</summary>
    internal static void HeadsPng(AttentionMap map, int layer, IReadOnlyList<HeadSummary> summaries, string path)
    {
        var (heads, n) = (map.HeadCount, map.Tokens.Count);
        var columns = (int)Math.Ceiling(Math.Sqrt(heads));
        var gridRows = (int)Math.Ceiling(heads / (double)columns);
        var cell = n + 1; // one blank row/column between heads
        var data = new double[gridRows * cell, columns * cell];
        for (var i = 0; i < data.GetLength(0); i++)
            for (var j = 0; j < data.GetLength(1); j++) data[i, j] = double.NaN;
        var plot = new Plot();
        for (var h = 0; h < heads; h++)
        {
            var (gr, gc) = (h / columns, h % columns);
            for (var q = 0; q < n; q++)
                for (var k = 0; k <= q; k++) data[(gr * cell) + q, (gc * cell) + k] = map[layer, h, q, k];
        }

        var heatmap = plot.Add.Heatmap(data);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.NaNCellColor = Colors.LightGray;
        heatmap.Rectangle = new CoordinateRect(0, columns * cell, 0, gridRows * cell);
        // White gaps between the heads, so the grey cells are only the masked future.
        for (var c = 0; c < columns; c++) Gap(plot, (c * cell) + n, (c * cell) + cell, 0, gridRows * cell);
        for (var r = 0; r < gridRows; r++) Gap(plot, 0, columns * cell, (gridRows * cell) - (r * cell) - cell, (gridRows * cell) - (r * cell) - n);
        for (var h = heads; h < columns * gridRows; h++) Gap(plot, (h % columns) * cell, ((h % columns) * cell) + cell, (gridRows * cell) - ((h / columns) * cell) - cell, (gridRows * cell) - ((h / columns) * cell));
        for (var h = 0; h < heads; h++)
        {
            var title = plot.Add.Text($"head {h}: {Role(summaries[h])}", ((h % columns) * cell) + (n / 2.0), (gridRows * cell) - ((h / columns) * cell) + 0.1);
            title.LabelAlignment = Alignment.LowerCenter;
            title.LabelFontSize = 12;
        }

        plot.Add.ColorBar(heatmap).Label = "attention weight";
        plot.Axes.SetLimits(-0.5, columns * cell, -0.5, (gridRows * cell) + 1.5);
        plot.HideAxesAndGrid();
        plot.Title($"layer {layer}: its {heads} heads (rows: queries, columns: keys; grey: the masked future)");
        plot.SavePng(path, ExplainPng.Width, ExplainPng.Height);
    }

    private static void Gap(Plot plot, double left, double right, double bottom, double top)
    {
        var gap = plot.Add.Rectangle(left, right, bottom, top);
        gap.FillColor = Colors.White;
        gap.LineWidth = 0;
    }

    /// <summary>Four rows side by side per key: q·k, scaled, plus the mask, softmax; each row coloured on its own scale and labelled with its numbers.</summary>
    internal static ExplainPng.Figure QueryKeyPng(QueryKeyScores scores, int head, string path)
    {
        var n = scores.Tokens.Count;
        string[] names = ["q·k", $"× {scores.Scale:G3}", "+ mask", "softmax"];
        var values = new double?[4][];
        values[0] = [.. scores.Raw[head].Select(v => (double?)v)];
        values[1] = [.. scores.Scaled[head].Select(v => (double?)v)];
        values[2] = [.. scores.Scaled[head].Select((v, k) => scores.Mask[k] is { } m ? v + m : (double?)null)];
        values[3] = [.. scores.Weights[head].Select((v, k) => scores.Mask[k] is null ? (double?)null : v)];
        var data = new double[4, n];
        for (var r = 0; r < 4; r++)
        {
            var present = values[r].Where(v => v is not null).Select(v => v!.Value).DefaultIfEmpty(0).ToList();
            var (min, max) = (present.Min(), present.Max());
            for (var k = 0; k < n; k++) data[r, k] = values[r][k] is { } v ? (max > min ? (v - min) / (max - min) : 1) : double.NaN;
        }

        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(data);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.NaNCellColor = Colors.LightGray;
        heatmap.Rectangle = new CoordinateRect(0, n, 0, 4);
        for (var r = 0; r < 4; r++)
        {
            for (var k = 0; k < n; k++)
            {
                // A masked key: −∞ after the mask, weight 0 after the softmax (grey cells).
                var text = values[r][k] is { } v ? v.ToString(r == 3 ? "0.000" : "0.00", CultureInfo.InvariantCulture) : r == 3 ? "0" : "−∞";
                var label = plot.Add.Text(text, k + 0.5, 3.5 - r);
                label.LabelAlignment = Alignment.MiddleCenter;
                label.LabelFontSize = Math.Clamp(140f / n, 7, 13);
                label.LabelFontColor = double.IsNaN(data[r, k]) || data[r, k] > 0.6 ? Colors.Black : Colors.White;
            }
        }

        Func<int, double> at = i => i + 0.5;
        TickLabels.Apply(plot.Axes.Left, names, r => 3.5 - r, tokens: false);
        TickLabels.Apply(plot.Axes.Bottom, scores.Tokens, at, tokens: true);
        plot.Axes.SetLimits(0, n, 0, 4);
        plot.Title($"layer {scores.Layer}, head {head}: query {scores.Query} (\"{scores.Tokens[scores.Query].Trim()}\") against every key, dot product → softmax");
        plot.XLabel("key");
        return ExplainPng.Save(plot, scores.Tokens, at, tokens: true, path);
    }
}
