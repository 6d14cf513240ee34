using System.CommandLine;
using OnnxLM.Cli.Commands;

namespace OnnxLM.Cli;

/// <summary>
/// The <c>onnxlm</c> tool. Exit codes: 0 success, 1 usage error (bad or missing arguments), 2 model or input error
/// (missing files, bad model, over-long prompt), 130 cancelled (Ctrl+C). Errors are one line on standard error,
/// with the stack trace only under <c>--verbose</c>.
/// </summary>
internal static class CliApp
{
    /// <summary>The model used when <c>--model</c> is not given, found beside the tool or above the current folder.</summary>
    public const string DefaultModel = "models/kjv-tiny";

    /// <summary>Runs one command line.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, TextReader input)
    {
        var context = new CliContext(output, error, input);
        // A plain command named onnxlm (a RootCommand takes its name from the executable, OnnxLM.Cli.dll under dotnet).
        var root = new Command("onnxlm", "Run, inspect and evaluate ONNX language models (default model: the embedded kjv-tiny).");
        root.Options.Add(new System.CommandLine.Help.HelpOption());
        root.Options.Add(new VersionOption { Action = new PrintVersion(output) });
        root.Options.Add(CliContext.ModelOption);
        root.Options.Add(CliContext.ProviderOption);
        root.Options.Add(CliContext.VerboseOption);
        root.Subcommands.Add(InspectCommand.Create(context));
        root.Subcommands.Add(TokenizeCommand.Create(context));
        root.Subcommands.Add(GenerateCommand.Create(context));
        root.Subcommands.Add(ChatCommand.Create(context));
        root.Subcommands.Add(ScoreCommand.Create(context));
        root.Subcommands.Add(PerplexityCommand.Create(context));
        root.Subcommands.Add(EvalCommand.Create(context));
        root.Subcommands.Add(BenchCommand.Create(context));
        root.Subcommands.Add(OnnxLM.Cli.Explain.ExplainCommand.Create(context));
        root.Subcommands.Add(ServeCommand.Create(context));
        root.Subcommands.Add(PullCommand.Create(context));
        root.Subcommands.Add(ModelBuilderCommands.Convert(context));
        root.Subcommands.Add(ModelBuilderCommands.TrainBpe(context));
        var parse = root.Parse(args);
        return await parse.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false })
            .ConfigureAwait(false);
    }

    /// <summary>The tool's own version (the entry assembly is a test host when run in-process).</summary>
    private sealed class PrintVersion(TextWriter output) : System.CommandLine.Invocation.SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            var assembly = typeof(CliApp).Assembly;
            output.WriteLine(assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
                .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? assembly.GetName().Version?.ToString());
            return 0;
        }
    }
}
