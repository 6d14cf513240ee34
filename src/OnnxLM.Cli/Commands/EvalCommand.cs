using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnnxLM.Cli.Commands;

/// <summary>
/// <c>onnxlm eval requests.jsonl</c>: answers lm-evaluation-harness requests, one JSON object per line —
/// <c>{"request_type": "loglikelihood", "arguments": [context, continuation]}</c>,
/// <c>{"request_type": "loglikelihood_rolling", "arguments": [text]}</c>,
/// <c>{"request_type": "generate_until", "arguments": [context, {"until": [...], "max_gen_toks": n}]}</c> — with one
/// line each: <c>{"result": [logprob, is_greedy]}</c>, <c>{"result": logprob}</c>, <c>{"result": text}</c>, the values
/// lm-eval's <c>LM.loglikelihood</c>, <c>loglikelihood_rolling</c> and <c>generate_until</c> return.
/// </summary>
internal static class EvalCommand
{
    public static Command Create(CliContext cli)
    {
        var file = new Argument<string>("requests") { Description = "A JSONL file of lm-evaluation-harness requests; - reads standard input" };
        var output = new Option<string?>("--output", "-o") { Description = "Write the answers to this file instead of standard output" };
        var command = new Command("eval", "Answer lm-evaluation-harness requests (loglikelihood, loglikelihood_rolling, generate_until) from JSONL") { file, output };
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            var path = parse.GetValue(file)!;
            if (path != "-" && !File.Exists(path)) throw new IOException($"The requests file '{path}' does not exist.");
            var lines = (path == "-" ? cli.Input.ReadToEnd() : await File.ReadAllTextAsync(path, ct)).Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            using var model = cli.LoadModel(parse);
            await using var fileWriter = parse.GetValue(output) is { } o ? new StreamWriter(o) : null;
            var writer = (TextWriter?)fileWriter ?? cli.Output;
            for (var i = 0; i < lines.Count; i++)
            {
                JsonObject request;
                try
                {
                    request = JsonNode.Parse(lines[i]) as JsonObject ?? throw new FormatException("not a JSON object");
                }
                catch (JsonException e)
                {
                    throw new FormatException($"Line {i + 1} of '{path}' is not JSON: {e.Message}");
                }

                var args = request["arguments"] as JsonArray ?? throw new FormatException($"Line {i + 1}: 'arguments' must be a list.");
                string Arg(int k) => args.ElementAtOrDefault(k)?.GetValue<string>() ?? throw new FormatException($"Line {i + 1}: argument {k} must be a string.");
                object result = request["request_type"]?.GetValue<string>() switch
                {
                    "loglikelihood" => await LogLikelihood(model, Arg(0), Arg(1), ct),
                    "loglikelihood_rolling" => (await model.ScorePerplexityAsync(Arg(0), null, null, ct)).LogProb,
                    "generate_until" => await GenerateUntil(model, Arg(0), args.ElementAtOrDefault(1) as JsonObject, ct),
                    var other => throw new FormatException($"Line {i + 1}: request_type '{other}' is not loglikelihood, loglikelihood_rolling or generate_until."),
                };
                await writer.WriteLineAsync(CliContext.ToJson(new { result }));
            }

            return 0;
        }));
        return command;
    }

    private static async Task<object[]> LogLikelihood(LanguageModel model, string context, string continuation, CancellationToken ct)
    {
        var score = await model.ScoreAsync(context, continuation, null, ct);
        return [score.LogProb, score.IsGreedy];
    }

    /// <summary>Greedy (or sampled, with temperature) generation until one of the stop strings, as lm-eval's generate_until.</summary>
    private static async Task<string> GenerateUntil(LanguageModel model, string context, JsonObject? kwargs, CancellationToken ct)
    {
        var options = new GenerationOptions
        {
            MaxNewTokens = kwargs?["max_gen_toks"]?.GetValue<int>() ?? 256,
            Temperature = kwargs?["temperature"]?.GetValue<float>() ?? 0,
        };
        var until = kwargs?["until"] switch
        {
            JsonArray list => list.Select(s => s!.GetValue<string>()).ToList(),
            JsonValue one => [one.GetValue<string>()],
            _ => [],
        };
        foreach (var stop in until) options.StopSequences.Add(stop);
        var ids = model.Encode(context, null, ct);
        options.MaxNewTokens = Math.Max(1, Math.Min(options.MaxNewTokens, model.Info.ContextLength - ids.Length));
        return (await model.GenerateAsync(ids, options, ct)).Text;
    }
}
