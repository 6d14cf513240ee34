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
    /// <param name="args">The arguments.</param>
    /// <param name="output">Standard output.</param>
    /// <param name="error">Standard error.</param>
    /// <param name="input">Standard input.</param>
    /// <param name="terminal">Whether output and input are terminals (default: detected); tests set it to see the terminal views.</param>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, TextReader input, bool? terminal = null)
    {
        var context = new CliContext(output, error, input, terminal);
        var root = Build(context, output);
        var parse = root.Parse(args);
        string? suggestion = null;
        if (parse.Action is System.CommandLine.Invocation.ParseErrorAction errorAction && CommandSuggestions.For(parse) is { } ours)
        {
            // Our own suggestion: System.CommandLine's ranks options too, by distance alone ("gen" → "bench, -h, -m, -v").
            errorAction.ShowTypoCorrections = false;
            errorAction.ShowHelp = false; // the error and the suggestion, not the whole help under them
            suggestion = ours;
        }

        // The servers drain on SIGTERM/Ctrl+C within their own --drain-timeout; other commands stop within 2 s (the default).
        var drains = parse.CommandResult.Command.Name is "serve" or "gateway";
        var code = await parse.InvokeAsync(new InvocationConfiguration
            {
                Output = output, Error = error, EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = drains ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(2),
            })
            .ConfigureAwait(false);
        if (suggestion is not null) error.WriteLine(suggestion);
        return code;
    }

    /// <summary>The command tree. --model, --provider, --dtype and --variant are on the commands that load a model only.</summary>
    private static Command Build(CliContext context, TextWriter output)
    {
        // A plain command named onnxlm (a RootCommand takes its name from the executable, OnnxLM.Cli.dll under dotnet).
        var root = new Command("onnxlm", "Run, inspect and evaluate ONNX language models (default model: the embedded kjv-tiny).");
        root.Options.Add(new System.CommandLine.Help.HelpOption());
        root.Options.Add(new VersionOption { Action = new PrintVersion(output) });
        // Also before the command name (onnxlm --model folder generate …); not recursive, so convert's help does not list them.
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
        root.Subcommands.Add(GatewayCommand.Create(context));
        root.Subcommands.Add(PullCommand.Create(context));
        root.Subcommands.Add(ModelBuilderCommands.Convert(context));
        root.Subcommands.Add(ModelBuilderCommands.TrainBpe(context));
        foreach (var command in root.Subcommands)
        {
            // convert and train-bpe load no model (convert's --dtype is its weight storage); pull has its own --dtype and --variant.
            if (command.Name is "convert" or "train-bpe" or "pull" or "gateway") continue;
            AddModelOptions(command);
        }

        return root;
    }

    /// <summary>Adds the model options to a command that loads a model, or to each command of a group (explain).</summary>
    private static void AddModelOptions(Command command)
    {
        if (command.Subcommands.Count > 0)
        {
            foreach (var sub in command.Subcommands) AddModelOptions(sub);
            return;
        }

        command.Options.Add(CliContext.ModelOption);
        command.Options.Add(CliContext.ProviderOption);
        command.Options.Add(CliContext.DtypeOption);
        command.Options.Add(CliContext.VariantOption);
        command.Options.Add(CliContext.WeightCacheOption);
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
