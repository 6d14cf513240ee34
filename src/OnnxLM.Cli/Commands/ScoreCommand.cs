using System.CommandLine;
using System.Globalization;
using Spectre.Console;

namespace OnnxLM.Cli.Commands;

/// <summary><c>onnxlm score "context" "continuation"</c>: the exact log-probability of the continuation, token by token, with the alternatives.</summary>
internal static class ScoreCommand
{
    public static Command Create(CliContext cli)
    {
        var context = new Argument<string>("context") { Description = "The text before (- reads standard input)" };
        var continuation = new Argument<string>("continuation") { Description = "The text whose log-probability is wanted" };
        var top = new Option<int>("--top") { Description = "Show this many most likely alternatives per token", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print the score as JSON" };
        var command = new Command("score", "Log-probability of a continuation after a context (lm-evaluation-harness's loglikelihood)") { context, continuation, top, json };
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            var before = cli.ReadText(parse.GetValue(context), "context");
            var after = parse.GetValue(continuation)!;
            if (after.Length == 0) throw new UsageException("the continuation is empty.");
            var topK = parse.GetValue(top);
            if (topK is < 0 or > 100) throw new UsageException($"--top must be between 0 and 100, not {topK}.");
            using var model = cli.LoadModel(parse);
            var score = await model.ScoreAsync(before, after, new ScoreOptions { TopAlternatives = topK }, ct);
            if (parse.GetValue(json))
            {
                cli.Output.WriteLine(CliContext.ToJson(new
                {
                    logprob = score.LogProb,
                    is_greedy = score.IsGreedy,
                    context_tokens = score.ContextTokenIds.Count,
                    tokens = score.Tokens.Select(t => new
                    {
                        id = t.Id, text = t.Text, logprob = t.LogProb, rank = t.Rank,
                        alternatives = t.Alternatives.Select(a => new { id = a.Id, text = a.Text, logprob = a.LogProb }),
                    }),
                }));
                return 0;
            }

            var table = new Table().AddColumn("token").AddColumn(new TableColumn("log-prob").RightAligned()).AddColumn(new TableColumn("rank").RightAligned()).AddColumn("most likely instead")
                .Border(TableBorder.Simple);
            foreach (var t in score.Tokens)
            {
                table.AddRow(Markup.Escape(Quote(t.Text)), t.LogProb.ToString("F4", CultureInfo.InvariantCulture), t.Rank.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(string.Join("  ", t.Alternatives.Select(a => $"{Quote(a.Text)} {a.LogProb.ToString("F2", CultureInfo.InvariantCulture)}"))));
            }

            cli.Console.Write(table);
            cli.Output.WriteLine(FormattableString.Invariant(
                $"log-prob {score.LogProb:F4} over {score.Tokens.Count} tokens (probability {Math.Exp(score.LogProb):G4}); greedy: {(score.IsGreedy ? "yes" : "no")}"));
            return 0;
        }));
        return command;
    }

    private static string Quote(string s) => CliContext.ToJson(s);
}
