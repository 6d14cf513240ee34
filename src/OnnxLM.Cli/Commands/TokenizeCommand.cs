using System.CommandLine;
using Spectre.Console;

namespace OnnxLM.Cli.Commands;

/// <summary>
/// <c>onnxlm tokenize "text"</c>: on a terminal the tokens as coloured pieces with their ids; piped, one token per line,
/// <c>id&lt;TAB&gt;piece</c>; <c>--explain</c> shows the BPE merges that built each word.
/// </summary>
internal static class TokenizeCommand
{
    private static readonly string[] Colours = ["deepskyblue1", "orange1", "springgreen2", "hotpink", "yellow1", "mediumpurple1"];

    public static Command Create(CliContext cli)
    {
        var text = new Argument<string?>("text") { Description = "The text, or - to read standard input", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print the tokens as JSON (id, piece, text span)" };
        var explain = new Option<bool>("--explain") { Description = "Show, word by word, the byte-pair merges that built the tokens" };
        var noSpecial = new Option<bool>("--no-special") { Description = "Do not add the tokenizer's special tokens (BOS/EOS)" };
        var command = new Command("tokenize", "Show how the model's tokenizer splits a text") { text, json, explain, noSpecial };
        command.SetAction((parse, ct) => cli.RunAsync(parse, () =>
        {
            var input = cli.ReadText(parse.GetValue(text), "text");
            var folder = cli.ResolveModel(parse);
            var tokenizer = TextTokenizer.HasTokenizerFile(folder) ? TextTokenizer.FromFolder(folder)
                : throw new ModelFormatException($"'{folder}' has no tokenizer files.", folder);
            var tokens = tokenizer.EncodeToTokens(input, addSpecialTokens: !parse.GetValue(noSpecial));
            if (parse.GetValue(json))
            {
                cli.Output.WriteLine(CliContext.ToJson(tokens.Select(t => new
                {
                    id = t.Id, piece = t.Piece, start = t.Start, length = t.Length, text = input.Substring(t.Start, t.Length),
                })));
                return Task.FromResult(0);
            }

            var line = new System.Text.StringBuilder();
            for (var i = 0; i < tokens.Count; i++)
            {
                var t = tokens[i];
                var shown = CliContext.Visible(tokenizer.IsSpecialToken(t.Id) ? tokenizer.TokenToPiece(t.Id) : tokenizer.Decode([t.Id]));
                if (cli.OutputInteractive) line.Append($"[{Colours[i % Colours.Length]}]{Markup.Escape(shown)}[/][grey]{t.Id}[/] ");
                else cli.Output.WriteLine($"{t.Id}\t{shown}"); // colours are what separate piece and id on a terminal; piped, a tab does
            }

            if (cli.OutputInteractive) cli.Console.MarkupLine(line.ToString().TrimEnd());
            var summary = $"{tokens.Count} tokens, {input.Length} characters, {System.Text.Encoding.UTF8.GetByteCount(input)} bytes";
            if (cli.OutputInteractive) cli.Console.MarkupLine($"[grey]{summary}[/]");
            else cli.Error.WriteLine(summary); // piped, standard output holds token lines only
            if (parse.GetValue(explain))
            {
                foreach (var word in tokenizer.Explain(input).Words)
                {
                    cli.Console.MarkupLine($"[bold]{Markup.Escape(CliContext.Visible(word.Word))}[/]" + (word.Merges.Count == 0 ? " [grey](no merges)[/]" : ""));
                    foreach (var merge in word.Merges)
                    {
                        cli.Console.MarkupLine($"  {Markup.Escape(CliContext.Visible(merge.Left))} + {Markup.Escape(CliContext.Visible(merge.Right))} → {Markup.Escape(CliContext.Visible(merge.Result))} [grey](merge #{merge.Rank})[/]");
                    }
                }
            }

            return Task.FromResult(0);
        }));
        return command;
    }

}
