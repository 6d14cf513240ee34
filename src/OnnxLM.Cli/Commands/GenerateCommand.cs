using System.CommandLine;
using System.Diagnostics;

namespace OnnxLM.Cli.Commands;

/// <summary><c>onnxlm generate "prompt"</c>: streams a continuation; speed on standard error; <c>--json</c> for the whole result.</summary>
internal static class GenerateCommand
{
    public static Command Create(CliContext cli)
    {
        var prompt = new Argument<string?>("prompt") { Description = "The text to continue, or - to read standard input", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object (text, tokens with log-probabilities, finish reason, timings)" };
        var speculative = new Option<bool>("--speculative")
        {
            Description = "Speculative decoding: drafts of the next tokens (prompt lookup, or --draft-model) checked in one run; the same output, faster when it repeats text it has seen",
        };
        var draftModel = new Option<string?>("--draft-model") { Description = "A smaller model folder with the same tokenizer that drafts for --speculative (implies it)" };
        var generation = new GenerationOptionSet();
        var command = new Command("generate", "Continue a prompt, streaming the text as it is generated") { prompt, json, speculative, draftModel };
        generation.AddTo(command);
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            var text = cli.ReadText(parse.GetValue(prompt), "prompt");
            if (text.Length == 0) throw new UsageException("the prompt is empty.");
            var options = generation.Create(parse);
            using var model = cli.LoadModel(parse);
            using var draft = parse.GetValue(draftModel) is { } draftFolder ? cli.LoadModel(parse, draftFolder) : null;
            if (parse.GetValue(speculative) || draft is not null)
            {
                options.Speculation = new SpeculativeDecoding { DraftModel = draft };
                try
                {
                    options.Speculation.Validate(model);
                }
                catch (InvalidOptionException e)
                {
                    throw UsageException.For(e, "draft-model");
                }
            }

            var ids = model.Encode(text, options.AddBosToken, ct);
            var context = model.Info.ContextLength;
            if (ids.Length >= context)
            {
                throw new ContextLengthExceededException(ids.Length + 1, context, $"The prompt has {ids.Length} tokens; the model's context length {context} leaves no room to generate.");
            }

            if (ids.Length + options.MaxNewTokens > context)
            {
                throw new UsageException($"--max-new-tokens {options.MaxNewTokens} with a {ids.Length}-token prompt passes the model's context length {context}; use at most {context - ids.Length}.");
            }

            var clock = Stopwatch.StartNew();
            TimeSpan? first = null;
            var tokens = new List<GeneratedToken>();
            if (!parse.GetValue(json)) cli.Output.Write(text);
            await foreach (var token in model.GenerateStreamingAsync(ids, options, ct))
            {
                first ??= clock.Elapsed;
                tokens.Add(token);
                if (!parse.GetValue(json))
                {
                    cli.Output.Write(token.Text);
                    await cli.Output.FlushAsync(ct);
                }
            }

            var elapsed = clock.Elapsed;
            var rate = tokens.Count > 1 ? (tokens.Count - 1) / (elapsed - first!.Value).TotalSeconds : 0;
            var finish = tokens.Count > 0 ? tokens[^1].FinishReason : null;
            if (parse.GetValue(json))
            {
                cli.Output.WriteLine(CliContext.ToJson(new
                {
                    prompt = text,
                    text = string.Concat(tokens.Select(t => t.Text)),
                    prompt_tokens = ids.Length,
                    tokens = tokens.Select(t => new { id = t.Id, text = t.Text, logprob = t.LogProb }),
                    finish_reason = finish?.ToString().ToLowerInvariant(),
                    time_to_first_token_ms = first?.TotalMilliseconds,
                    tokens_per_second = rate,
                }));
            }
            else
            {
                cli.Output.WriteLine();
            }

            cli.Error.WriteLine(FormattableString.Invariant($"[{tokens.Count} tokens, {rate:F1} tokens/s, first token after {first?.TotalMilliseconds ?? 0:F0} ms, finish: {finish}]"));
            return 0;
        }));
        return command;
    }
}
