using System.CommandLine;
using OnnxLM.Chat;

namespace OnnxLM.Cli.Commands;

/// <summary>
/// <c>onnxlm chat</c>: a conversation on standard input, one message per line, through a <see cref="ChatSession"/>
/// (the model's chat template; the cache reused between turns). <c>/reset</c> starts over, <c>/system text</c> sets
/// the system message and starts over, <c>/exit</c> or the end of input stops. When standard input is a terminal, a
/// <c>you&gt;</c> prompt and an <c>assistant&gt;</c> label frame each turn (on standard output when it is a terminal too,
/// else on standard error); piped, standard output holds the replies alone, one per line.
/// </summary>
internal static class ChatCommand
{
    public static Command Create(CliContext cli)
    {
        var system = new Option<string?>("--system") { Description = "The system message" };
        var stats = new Option<bool>("--stats") { Description = "After each reply, print on standard error the prompt tokens, how many the cache already held, and the generated ones" };
        var generation = new GenerationOptionSet();
        var command = new Command("chat", "Chat with the model: one message per line on standard input (/reset, /system <text>, /exit)") { system, stats };
        generation.AddTo(command);
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            var options = generation.Create(parse);
            using var model = cli.LoadModel(parse);
            if (!model.HasChatTemplate)
            {
                cli.Error.WriteLine("onnxlm: this model has no chat template; using the plain User:/Assistant: one.");
            }

            var sessionOptions = new ChatSessionOptions { SystemPrompt = parse.GetValue(system), Overflow = ChatOverflow.DropOldestTurns };
            var chat = model.CreateChat(sessionOptions);
            // Labels only for a person typing; where output is piped they go to standard error so the replies stay machine-readable.
            var labels = cli.InputInteractive ? (cli.OutputInteractive ? cli.Output : cli.Error) : null;
            if (labels is not null) labels.WriteLine("Type a message and press Enter; /reset, /system <text>, /exit (or Ctrl+D).");
            try
            {
                while (await Prompt(labels, ct) && await cli.Input.ReadLineAsync(ct) is { } line)
                {
                    var trimmed = line.Trim();
                    if (trimmed == "/exit") break;
                    if (trimmed == "/reset" || trimmed.StartsWith("/system", StringComparison.Ordinal))
                    {
                        if (trimmed.StartsWith("/system", StringComparison.Ordinal))
                        {
                            sessionOptions.SystemPrompt = trimmed.Length > 7 ? trimmed[7..].Trim() : null;
                        }

                        chat.Dispose();
                        chat = model.CreateChat(sessionOptions);
                        continue;
                    }

                    if (trimmed.Length == 0) continue;
                    if (labels is not null)
                    {
                        await labels.WriteAsync(Assistant.AsMemory(), ct);
                        await labels.FlushAsync(ct);
                    }

                    try
                    {
                        await foreach (var token in chat.SendStreamingAsync(line, options, ct))
                        {
                            cli.Output.Write(token.Text);
                            await cli.Output.FlushAsync(ct);
                        }
                    }
                    catch (TemplateException e)
                    {
                        cli.Error.WriteLine($"onnxlm: the chat template refused the conversation: {e.Message}");
                        continue;
                    }

                    cli.Output.WriteLine();
                    if (parse.GetValue(stats) && chat.LastReply is { } reply)
                    {
                        cli.Error.WriteLine($"[prompt {reply.PromptTokenCount} tokens, {reply.ReusedTokenCount} from the cache, {reply.Result.TokenIds.Count} generated, finish: {reply.Result.FinishReason}]");
                    }
                }
            }
            finally
            {
                chat.Dispose();
            }

            return 0;
        }));
        return command;
    }

    /// <summary>The label before each reply when a person is typing.</summary>
    internal const string Assistant = "assistant> ";

    /// <summary>The prompt before each message when a person is typing.</summary>
    internal const string User = "you> ";

    /// <summary>Writes the <see cref="User"/> prompt where labels go (none when input is piped); always true, so it can lead the read loop's condition.</summary>
    private static async Task<bool> Prompt(TextWriter? labels, CancellationToken ct)
    {
        if (labels is null) return true;
        await labels.WriteAsync(User.AsMemory(), ct);
        await labels.FlushAsync(ct);
        return true;
    }
}
