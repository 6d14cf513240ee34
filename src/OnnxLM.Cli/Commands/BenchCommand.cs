using System.CommandLine;
using System.Diagnostics;

namespace OnnxLM.Cli.Commands;

/// <summary><c>onnxlm bench</c>: prefill and decode tokens/s, time to first token and peak memory of the model, median of a few runs.</summary>
internal static class BenchCommand
{
    public static Command Create(CliContext cli)
    {
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length", DefaultValueFactory = _ => 128 };
        var newTokens = new Option<int>("--new-tokens") { Description = "Tokens decoded per run", DefaultValueFactory = _ => 64 };
        var runs = new Option<int>("--runs") { Description = "Measured runs (after one warm-up); the median is reported", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print the figures as JSON" };
        var command = new Command("bench", "Measure prefill and decode speed, time to first token and peak memory") { promptTokens, newTokens, runs, json };
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            var (p, n, r) = (parse.GetValue(promptTokens), parse.GetValue(newTokens), parse.GetValue(runs));
            if (p < 1 || n < 1 || r < 1) throw new UsageException("--prompt-tokens, --new-tokens and --runs must be at least 1.");
            using var model = cli.LoadModel(parse);
            if (p + n > model.Info.ContextLength)
            {
                throw new UsageException($"--prompt-tokens {p} + --new-tokens {n} pass the model's context length {model.Info.ContextLength}.");
            }

            // A prompt of exactly p tokens: the tokenizer's ids of repeated text, cut to length.
            var ids = new List<int>();
            var seed = model.HasTokenizer ? model.Tokenizer.Encode("In the beginning God created the heaven and the earth. ", addSpecialTokens: false) : [0];
            while (ids.Count < p) ids.AddRange(seed);
            var prompt = ids.Take(p).ToArray();
            var options = new GenerationOptions { Temperature = 0, MaxNewTokens = n, StopTokenIds = [] };
            var prefill = new List<double>();
            var firstToken = new List<double>();
            var decode = new List<double>();
            for (var run = 0; run <= r; run++)
            {
                using (var session = model.CreateSession(p))
                {
                    var clock = Stopwatch.StartNew();
                    session.Append(prompt, ct);
                    if (run > 0) prefill.Add(p / clock.Elapsed.TotalSeconds);
                }

                var timer = Stopwatch.StartNew();
                TimeSpan? first = null;
                var count = 0;
                await foreach (var _ in model.GenerateStreamingAsync(prompt, options, ct))
                {
                    first ??= timer.Elapsed;
                    count++;
                }

                if (run > 0)
                {
                    firstToken.Add(first!.Value.TotalMilliseconds);
                    decode.Add((count - 1) / (timer.Elapsed - first.Value).TotalSeconds);
                }

                if (cli.ErrorInteractive) cli.Error.Write(run == 0 ? "warm-up done" : $"\rrun {run}/{r}   ");
            }

            if (cli.ErrorInteractive) cli.Error.WriteLine();
            static double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);
            var peak = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
            if (parse.GetValue(json))
            {
                cli.Output.WriteLine(CliContext.ToJson(new
                {
                    provider = model.Info.ExecutionProvider.ToString(), prompt_tokens = p, new_tokens = n, runs = r,
                    prefill_tokens_per_second = Median(prefill), decode_tokens_per_second = Median(decode), time_to_first_token_ms = Median(firstToken), peak_memory_mb = peak,
                }));
            }
            else
            {
                cli.Output.WriteLine(FormattableString.Invariant(
                    $"{model.Info.ExecutionProvider}, prompt {p} tokens, {n} new, median of {r}: prefill {Median(prefill):F0} tokens/s, decode {Median(decode):F1} tokens/s, first token {Median(firstToken):F1} ms, peak memory {peak:F0} MiB"));
            }

            return 0;
        }));
        return command;
    }
}
