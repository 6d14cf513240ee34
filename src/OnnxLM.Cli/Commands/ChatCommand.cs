using System.CommandLine;
using OnnxLM.Chat;

namespace OnnxLM.Cli.Commands;

/// <summary>
/// <c>onnxlm chat</c>: a conversation on standard input, one message per line, through a <see cref="ChatSession"/>
/// (the model's chat template; the cache reused between turns). <c>/reset</c> starts over, <c>/system text</c> sets
/// the system message and starts over, <c>/exit</c> or the end of input stops.
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
            try
            {
                while (await cli.Input.ReadLineAsync(ct) is { } line)
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
}
