using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OnnxLM.Explain;
using Spectre.Console;

namespace OnnxLM.Cli.Explain;

/// <summary>
/// <c>onnxlm explain tokens|next|surprise|attention|embeddings|params|cache</c>: the views of <see cref="ModelExplainer"/>
/// as terminal tables, bars and heatmaps, as JSON (<c>--json</c>) and as PNG images (<c>--png file</c>).
/// </summary>
internal static partial class ExplainCommand
{
    private static readonly JsonSerializerOptions Json = CliContext.SnakeCaseJson;

    public static Command Create(CliContext cli)
    {
        var command = new Command("explain", "See inside the model: tokens, next-token odds, surprise, attention, embeddings, parameters, the KV cache");
        command.Subcommands.Add(Tokens(cli));
        command.Subcommands.Add(Next(cli));
        command.Subcommands.Add(Surprise(cli));
        command.Subcommands.Add(Attention(cli));
        command.Subcommands.Add(Embeddings(cli));
        command.Subcommands.Add(CountParameters(cli));
        command.Subcommands.Add(Cache(cli));
        LayerViews.AddTo(command, cli);
        AddBlockViews(command, cli); // contributions, dimensions, cost (BlockViews.cs)
        return command;
    }

    private static Option<bool> JsonOption() => new("--json") { Description = "Print the view as JSON" };

    private static Option<string?> PngOption() => new("--png") { Description = "Also draw the view into this PNG file" };

    private static Argument<string?> TextArgument(string what) => new("text") { Description = $"The {what}, or - to read standard input", Arity = ArgumentArity.ZeroOrOne };

    /// <summary>Runs a view: loads the model, computes, prints JSON or the terminal rendering, draws the PNG.</summary>
    private static void Action<T>(Command command, CliContext cli, Option<bool> json, Option<string?>? png, Func<ParseResult, ModelExplainer, LanguageModel, CancellationToken, Task<T>> compute,
        Action<T, IAnsiConsole> render, Action<T, string>? draw = null)
    {
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            using var model = cli.LoadModel(parse);
            using var explainer = model.Explain();
            var view = await compute(parse, explainer, model, ct);
            if (parse.GetValue(json)) cli.Output.WriteLine(JsonSerializer.Serialize(view, Json));
            else render(view, cli.Console);
            if (png is not null && parse.GetValue(png) is { } file)
            {
                draw!(view, file);
                cli.Error.WriteLine($"wrote {file}");
            }

            return 0;
        }));
    }

    private static Command Tokens(CliContext cli)
    {
        var text = TextArgument("text");
        var json = JsonOption();
        var command = new Command("tokens", "How the text becomes tokens: the byte-pair merges of every word, then the tokens with ids and byte offsets") { text, json };
        Action(command, cli, json, null, (p, e, _, _) => Task.FromResult(e.Tokens(cli.ReadText(p.GetValue(text), "text"))), (view, console) =>
        {
            foreach (var word in view.Words)
            {
                console.MarkupLine($"[bold]{Markup.Escape(CliContext.Visible(word.Word))}[/]" + (word.Merges.Count == 0 ? " [grey](no merges)[/]" : ""));
                foreach (var m in word.Merges)
                {
                    console.MarkupLine($"  {Markup.Escape(CliContext.Visible(m.Left))} + {Markup.Escape(CliContext.Visible(m.Right))} → [bold]{Markup.Escape(CliContext.Visible(m.Result))}[/] [grey](merge #{m.Rank})[/]");
                }
            }

            var table = new Table().AddColumns("id", "piece", "text", "bytes").Border(TableBorder.Simple);
            foreach (var t in view.Tokens) table.AddRow(new Text(t.Id.ToString(CultureInfo.InvariantCulture)), new Text(t.Piece), new Text(CliContext.Visible(t.Text)), new Text($"{t.ByteStart}..{t.ByteStart + t.ByteLength}"));
            console.Write(table);
        });
        return command;
    }

    private static Command Next(CliContext cli)
    {
        var prompt = TextArgument("prompt");
        var top = new Option<int>("--top") { Description = "Tokens to show", DefaultValueFactory = _ => 10 };
        var temperatures = new Option<string>("--temperatures") { Description = "Comma-separated temperatures to compare", DefaultValueFactory = _ => "0,0.5,1,1.5,2" };
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("next", "The next-token probabilities after a prompt, and how temperature reshapes them") { prompt, top, temperatures, json, png };
        Action(command, cli, json, png, (p, e, _, ct) =>
        {
            var ts = p.GetValue(temperatures)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(t => float.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : throw new UsageException($"--temperatures: '{t}' is not a number.")).ToList();
            return e.NextTokenAsync(cli.ReadText(p.GetValue(prompt), "prompt"), p.GetValue(top), ts, cancellationToken: ct);
        }, (view, console) =>
        {
            foreach (var t in view.Temperatures)
            {
                var chart = new BarChart().Label($"T = {t.Temperature:0.##}: entropy {t.EntropyBits:F2} bits, top-{t.Top.Count} hold {t.TopMass:P1}; top-p {view.TopP} keeps {t.TopPKeeps}, min-p {view.MinP} keeps {t.MinPKeeps}")
                    .Width(90).LeftAlignLabel();
                foreach (var token in t.Top) chart.AddItem(Markup.Escape(CliContext.Visible(token.Text)), Math.Round(token.Probability * 100, 2), Color.DeepSkyBlue1);
                console.Write(chart);
                console.WriteLine();
            }
        }, (view, file) => ExplainPng.NextToken(view, file));
        return command;
    }

    private static Command Surprise(CliContext cli)
    {
        var text = TextArgument("text");
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("surprise", "How surprising each token of a text is to the model: −log₂ p, the training loss token by token") { text, json, png };
        Action(command, cli, json, png, (p, e, _, ct) => e.SurpriseAsync(cli.ReadText(p.GetValue(text), "text"), ct), (view, console) =>
        {
            var line = string.Concat(view.Tokens.Select(t => $"[{Heat(Math.Min(1, t.SurpriseBits / 16))}]{Markup.Escape(t.Text)}[/]"));
            console.MarkupLine(line);
            var table = new Table().AddColumns("token", "p", "surprise (bits)", "rank").Border(TableBorder.Simple);
            foreach (var t in view.Tokens)
            {
                table.AddRow(new Text(CliContext.Visible(t.Text)), new Text(t.Probability.ToString("G3", CultureInfo.InvariantCulture)), new Text(t.SurpriseBits.ToString("F2", CultureInfo.InvariantCulture)), new Text(t.Rank.ToString(CultureInfo.InvariantCulture)));
            }

            console.Write(table);
            console.MarkupLine($"mean {view.MeanSurpriseBits:F2} bits per token");
        }, (view, file) => ExplainPng.Bars([.. view.Tokens.Select(t => t.Text)], [.. view.Tokens.Select(t => t.SurpriseBits)], $"surprise per token (mean {view.MeanSurpriseBits:F2} bits)", "−log₂ p (bits)", tokens: true, file));
        return command;
    }

    private static Command Attention(CliContext cli)
    {
        var text = TextArgument("text");
        var layer = new Option<int?>("--layer") { Description = "The layer (default: the last)" };
        var head = new Option<int?>("--head") { Description = "The head (default: the average of the layer's heads)" };
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("attention", "Where each token looks: the attention probabilities of a layer and head (or the layer's average) as a heatmap") { text, layer, head, json, png };
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            using var model = cli.LoadModel(parse);
            using var explainer = model.Explain();
            var map = await explainer.AttentionAsync(cli.ReadText(parse.GetValue(text), "text"), ct);
            var l = parse.GetValue(layer) ?? map.LayerCount - 1;
            if (l < 0 || l >= map.LayerCount) throw new UsageException($"--layer must be between 0 and {map.LayerCount - 1}.");
            var h = parse.GetValue(head);
            if (h is < 0 || h >= map.HeadCount) throw new UsageException($"--head must be between 0 and {map.HeadCount - 1}.");
            var weights = h is { } one ? map.Head(l, one) : map.LayerAverage(l);
            var title = $"layer {l}, " + (h is { } hh ? $"head {hh}" : $"average of {map.HeadCount} heads");
            if (parse.GetValue(json))
            {
                cli.Output.WriteLine(JsonSerializer.Serialize(new { tokens = map.Tokens, layers = map.LayerCount, heads = map.HeadCount, layer = l, head = h, weights }, Json));
            }
            else
            {
                cli.Console.MarkupLine($"[bold]{Markup.Escape(title)}[/] [grey](rows: each token; columns: the tokens it attends to; brighter = more)[/]");
                var grid = new Table().Border(TableBorder.None).AddColumn("");
                foreach (var _ in map.Tokens) grid.AddColumn(new TableColumn("").Centered());
                grid.HideHeaders();
                for (var q = 0; q < map.Tokens.Count; q++)
                {
                    var cells = new List<Spectre.Console.Rendering.IRenderable> { new Text(CliContext.Visible(map.Tokens[q])) };
                    var colour = cli.Console.Profile.Capabilities.ColorSystem != ColorSystem.NoColors;
                    for (var k = 0; k < map.Tokens.Count; k++)
                    {
                        // A colour block on a terminal; the weight itself when the output is redirected.
                        cells.Add(new Markup(k > q ? "[grey]·[/]" : colour ? $"[on {Heat(weights[q][k])}]  [/]" : weights[q][k].ToString("0.00", CultureInfo.InvariantCulture)));
                    }

                    grid.AddRow(cells);
                }

                cli.Console.Write(grid);
            }

            if (parse.GetValue(png) is { } file)
            {
                ExplainPng.Attention(weights, map.Tokens, title, file);
                cli.Error.WriteLine($"wrote {file}");
            }

            return 0;
        }));
        return command;
    }

    private static Command Embeddings(CliContext cli)
    {
        var token = TextArgument("token (its first token is used)");
        var top = new Option<int>("--top") { Description = "Nearest tokens to show", DefaultValueFactory = _ => 10 };
        var analogy = new Option<string[]>("--analogy") { Description = "a b c: the tokens nearest to a − b + c", Arity = new ArgumentArity(3, 3), AllowMultipleArgumentsPerToken = true };
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("embeddings", "Token vectors: a token's nearest neighbours, analogies, and how orthogonal random tokens are") { token, top, analogy, json, png };
        Action(command, cli, json, png, (p, e, model, _) =>
        {
            int Id(string s) => model.Tokenizer.Encode(s, addSpecialTokens: false) is [var first, ..] ? first : throw new UsageException($"'{s}' has no tokens.");
            var word = cli.ReadText(p.GetValue(token), "token");
            var analogyWords = p.GetValue(analogy);
            return Task.FromResult(new
            {
                token = word,
                nearest = e.NearestTokens(Id(word), p.GetValue(top)),
                analogy = analogyWords is [var a, var b, var c] ? e.Analogy(Id(a), Id(b), Id(c), p.GetValue(top)) : null,
                random_pairs = e.RandomPairCosines(),
            });
        }, (view, console) =>
        {
            var table = new Table().AddColumns("nearest to " + CliContext.Visible(view.token), "cosine").Border(TableBorder.Simple);
            foreach (var t in view.nearest) table.AddRow(new Text(CliContext.Visible(t.Text)), new Text(t.Cosine.ToString("F3", CultureInfo.InvariantCulture)));
            console.Write(table);
            if (view.analogy is { } analogyResult)
            {
                console.MarkupLine("analogy: " + Markup.Escape(string.Join(", ", analogyResult.Select(t => $"{CliContext.Visible(t.Text)} ({t.Cosine:F3})"))));
            }

            var r = view.random_pairs;
            console.MarkupLine($"{r.Pairs} random token pairs: cosine mean {r.Mean:F3}, sd {r.StandardDeviation:F3} (1 = same direction, 0 = orthogonal)");
            var chart = new BarChart().Width(90);
            for (var i = 0; i < r.Histogram.Count; i++)
            {
                var from = r.HistogramMin + (i * (r.HistogramMax - r.HistogramMin) / r.Histogram.Count);
                chart.AddItem(from.ToString("+0.0;-0.0", CultureInfo.InvariantCulture), r.Histogram[i], Color.MediumPurple1);
            }

            console.Write(chart);
        }, (view, file) =>
        {
            var r = view.random_pairs;
            var labels = Enumerable.Range(0, r.Histogram.Count).Select(i => (r.HistogramMin + (i * (r.HistogramMax - r.HistogramMin) / r.Histogram.Count)).ToString("+0.0;-0.0", CultureInfo.InvariantCulture)).ToList();
            ExplainPng.Bars(labels, [.. r.Histogram.Select(x => (double)x)], $"cosine similarity of {r.Pairs} random token pairs (mean {r.Mean:F3})", "pairs", tokens: false, file);
        });
        return command;
    }

    private static Command CountParameters(CliContext cli)
    {
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("params", "Where the parameters are: embeddings, attention, MLP, norms, output head") { json, png };
        Action(command, cli, json, png, (_, e, _, _) => Task.FromResult(e.Parameters()), (view, console) =>
        {
            var chart = new BarChart().Label($"{view.Total:N0} parameters ({OnnxLM.Cli.Commands.InspectCommand.Learned(view):N0} learned, the rest position tables and constants)").Width(90);
            foreach (var g in view.Groups) chart.AddItem($"{g.Component} ({g.Share:P1})", g.Count, Color.Orange1);
            console.Write(chart);
        }, (view, file) => ExplainPng.Bars([.. view.Groups.Select(g => g.Component)], [.. view.Groups.Select(g => (double)g.Count)], $"{view.Total:N0} parameters by component", "parameters", tokens: false, file));
        return command;
    }

    private static Command Cache(CliContext cli)
    {
        var json = JsonOption();
        var png = PngOption();
        var command = new Command("cache", "What the KV cache costs (bytes per token) and saves (a step with it vs recomputing the prefix)") { json, png };
        Action(command, cli, json, png, (_, e, _, ct) => e.CacheAsync(cancellationToken: ct), (view, console) =>
        {
            console.MarkupLine($"KV cache: {view.BytesPerToken:N0} bytes per token, {view.BytesAtContext / 1048576.0:F1} MiB at the full context of {view.ContextLength}");
            var table = new Table().AddColumns("length", "step with cache (ms)", "step recomputing (ms)", "prefill (ms)", "saved").Border(TableBorder.Simple);
            foreach (var t in view.Timings)
            {
                table.AddRow(t.Length.ToString(CultureInfo.InvariantCulture), t.CachedStepMs.ToString("F2", CultureInfo.InvariantCulture), t.RecomputeStepMs.ToString("F2", CultureInfo.InvariantCulture),
                    t.PrefillMs.ToString("F2", CultureInfo.InvariantCulture), $"{t.RecomputeStepMs / t.CachedStepMs:F1}x");
            }

            console.Write(table);
        }, ExplainPng.Cache);
        return command;
    }

    /// <summary>A colour from dark blue (0) to yellow (1) for a weight or a normalised surprise.</summary>
    internal static string Heat(double value)
    {
        value = Math.Clamp(value, 0, 1);
        var (r, g, b) = ((int)(255 * value), (int)(60 + (180 * value)), (int)(160 * (1 - value)));
        return $"#{r:x2}{g:x2}{b:x2}";
    }

}
