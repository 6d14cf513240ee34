using System.CommandLine;
using Spectre.Console;

namespace OnnxLM.Cli.Commands;

/// <summary><c>onnxlm perplexity file.txt</c>: perplexity and bits per byte of a text file (or standard input), each non-empty line a document.</summary>
internal static class PerplexityCommand
{
    public static Command Create(CliContext cli)
    {
        var file = new Argument<string>("file") { Description = "A text file, one document per non-empty line; - reads standard input" };
        var window = new Option<int?>("--window") { Description = "Tokens per scoring window (default: the context length)" };
        var stride = new Option<int?>("--stride") { Description = "Tokens the window advances (default: the window, no overlap)" };
        var json = new Option<bool>("--json") { Description = "Print the totals as JSON" };
        var command = new Command("perplexity", "Perplexity, bits per byte and word perplexity of a text (lm-evaluation-harness's loglikelihood_rolling)") { file, window, stride, json };
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            var path = parse.GetValue(file)!;
            if (path != "-" && !File.Exists(path)) throw new IOException($"The text file '{path}' does not exist.");
            var lines = (path == "-" ? cli.Input.ReadToEnd() : await File.ReadAllTextAsync(path, ct))
                .Split('\n').Select(l => l.TrimEnd('\r')).Where(l => !string.IsNullOrWhiteSpace(l)).ToList();
            if (lines.Count == 0) throw new IOException($"'{path}' has no text to score.");
            var options = new PerplexityOptions();
            try
            {
                options.WindowLength = parse.GetValue(window);
                options.Stride = parse.GetValue(stride);
            }
            catch (InvalidOptionException e)
            {
                throw UsageException.For(e, e.OptionName == nameof(PerplexityOptions.Stride) ? "stride" : "window");
            }

            using var model = cli.LoadModel(parse);
            double logProb = 0;
            long tokens = 0, bytes = 0, words = 0;
            async Task ScoreAll(Action<double>? advance)
            {
                foreach (var line in lines)
                {
                    var r = await model.ScorePerplexityAsync(line, options, null, ct);
                    (logProb, tokens, bytes, words) = (logProb + r.LogProb, tokens + r.TokenCount, bytes + r.ByteCount, words + r.WordCount);
                    advance?.Invoke(1);
                }
            }

            if (cli.ErrorInteractive && !parse.GetValue(json))
            {
                var progress = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(cli.Error) });
                await progress.Progress().StartAsync(async p =>
                {
                    var task = p.AddTask("scoring", maxValue: lines.Count);
                    await ScoreAll(task.Increment);
                });
            }
            else
            {
                await ScoreAll(null);
            }

            var perplexity = Math.Exp(-logProb / tokens);
            var bitsPerByte = -logProb / Math.Log(2) / bytes;
            var wordPerplexity = Math.Exp(-logProb / words);
            if (parse.GetValue(json))
            {
                cli.Output.WriteLine(CliContext.ToJson(new { documents = lines.Count, tokens, bytes, words, logprob = logProb, perplexity, bits_per_byte = bitsPerByte, word_perplexity = wordPerplexity }));
            }
            else
            {
                cli.Output.WriteLine(FormattableString.Invariant(
                    $"{lines.Count} documents, {tokens} tokens, {bytes} bytes: log-prob {logProb:F1}, perplexity {perplexity:F3}, bits per byte {bitsPerByte:F4}, word perplexity {wordPerplexity:F2}"));
            }

            return 0;
        }));
        return command;
    }
}
