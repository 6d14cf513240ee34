using System.CommandLine;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace OnnxLM.Cli;

/// <summary>What every command shares: the writers, the model options and their resolution, error handling.</summary>
internal sealed class CliContext
{
    public static readonly Option<string?> ModelOption = new("--model", "-m")
    {
        Description = $"Model folder or Hub repository org/name (default: the embedded {CliApp.DefaultModel}, beside the tool or above the current folder)",
    };

    public static readonly Option<ExecutionProvider> ProviderOption = new("--provider")
    {
        Description = "Execution provider: auto (CUDA when usable, else CPU), cpu or cuda",
        DefaultValueFactory = _ => ExecutionProvider.Auto,
    };

    public static readonly Option<string?> DtypeOption = new("--dtype")
    {
        Description = "Precision to load from a transformers.js folder (graphs in onnx/): fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4 (default: the provider's preferred one the folder has)",
    };

    public static readonly Option<string?> VariantOption = new("--variant")
    {
        Description = "Variant folder to load from an ONNX Runtime GenAI hub folder, e.g. cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4 or its last part (default: by provider)",
    };

    public static readonly Option<string?> WeightCacheOption = new("--weight-cache")
    {
        Description = "Folder where the CPU provider's prepacked weights are kept between runs: faster loads and less private memory after the first (costs about the model's size on disk again)",
    };

    public static readonly Option<bool> VerboseOption = new("--verbose", "-v")
    {
        Description = "Log model loading and provider choice; print stack traces of errors",
        Recursive = true,
    };

    /// <summary>
    /// JSON for every <c>--json</c> output: relaxed escaping, as the text is read by people and parsers, never embedded
    /// in HTML (<c>&lt;s&gt;</c> and <c>'</c> stay as they are instead of <c>\u003Cs\u003E</c>).
    /// </summary>
    public static readonly System.Text.Json.JsonSerializerOptions Json = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The JSON of <see cref="Json"/> with snake_case property names (views whose records have C# names).</summary>
    public static readonly System.Text.Json.JsonSerializerOptions SnakeCaseJson = new(Json)
    {
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
    };

    /// <summary>A value as one line of JSON in <see cref="Json"/>'s form.</summary>
    public static string ToJson<T>(T value) => System.Text.Json.JsonSerializer.Serialize(value, Json);

    /// <param name="output">Standard output.</param>
    /// <param name="error">Standard error.</param>
    /// <param name="input">Standard input.</param>
    /// <param name="terminal">
    /// Whether standard output and input are terminals; by default, whether they are the console's and not redirected
    /// (tests set it to see the terminal views).
    /// </param>
    public CliContext(TextWriter output, TextWriter error, TextReader input, bool? terminal = null)
    {
        Output = output;
        Error = error;
        Input = input;
        var interactive = terminal ?? (ReferenceEquals(output, System.Console.Out) && !System.Console.IsOutputRedirected);
        InputInteractive = terminal ?? (ReferenceEquals(input, System.Console.In) && !System.Console.IsInputRedirected);
        OutputInteractive = interactive;
        Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!interactive) Console.Profile.Width = 200;
        ErrorInteractive = ReferenceEquals(error, System.Console.Error) && !System.Console.IsErrorRedirected;
    }

    public TextWriter Output { get; }

    public TextWriter Error { get; }

    public TextReader Input { get; }

    /// <summary>Spectre.Console over <see cref="Output"/>: colours and live widgets only on a terminal.</summary>
    public IAnsiConsole Console { get; }

    /// <summary>Whether standard output is a terminal: coloured views there, plain machine-readable lines otherwise.</summary>
    public bool OutputInteractive { get; }

    /// <summary>Whether standard input is a terminal (a person typing): <c>chat</c> then shows a prompt and role labels.</summary>
    public bool InputInteractive { get; }

    /// <summary>Whether standard error is a terminal (progress bars go there only then).</summary>
    public bool ErrorInteractive { get; }

    /// <summary>Runs a command body, turning failures into one-line messages and exit codes.</summary>
    public async Task<int> RunAsync(ParseResult parse, Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (UsageException e)
        {
            Error.WriteLine($"onnxlm {parse.CommandResult.Command.Name}: {e.Message} (see onnxlm {parse.CommandResult.Command.Name} --help)");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Error.WriteLine("onnxlm: cancelled.");
            return 130;
        }
        catch (Exception e) when (e is OnnxLMException or ArgumentException or IOException or UnauthorizedAccessException or InvalidOperationException
            or NotSupportedException or FormatException or System.Text.Json.JsonException)
        {
            Error.WriteLine($"onnxlm: {(e is InvalidOptionException invalid ? invalid.Reason : e.Message)}");
            if (parse.GetValue(VerboseOption)) Error.WriteLine(e);
            return 2;
        }
    }

    /// <summary>The model folder: --model, else the embedded default found beside the tool or above the current folder.</summary>
    /// <remarks>A folder in any layout <see cref="LanguageModel.Load(string, LanguageModelOptions?)"/> reads, --dtype and --variant choosing within it.</remarks>
    public string ResolveModel(ParseResult parse)
    {
        if (parse.GetValue(ModelOption) is { } given)
        {
            if (File.Exists(given))
            {
                throw new ModelFormatException($"--model '{given}' is a file; give the model folder that holds it ({Path.GetDirectoryName(Path.GetFullPath(given))}).", given);
            }

            if (Directory.Exists(given)) return given;
            if (OnnxLM.Hub.ModelHub.IsRepoId(given))
            {
                return HubModels.Resolve(this, given, new OnnxLM.Hub.HubDownloadOptions { Dtype = parse.GetValue(DtypeOption), Variant = parse.GetValue(VariantOption) });
            }

            throw new ModelFormatException($"The model folder '{given}' does not exist.", given);
        }

        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, CliApp.DefaultModel);
                if (File.Exists(Path.Combine(candidate, "genai_config.json"))) return candidate;
            }
        }

        throw new ModelFormatException(
            $"The default model '{CliApp.DefaultModel}' was found neither beside the tool ({AppContext.BaseDirectory}) nor above the current folder; give a model folder with --model.");
    }

    /// <summary>Loads the model of the command line (or the one in <paramref name="folder"/>, with the same provider), logging to standard error (warnings only unless --verbose).</summary>
    public LanguageModel LoadModel(ParseResult parse, string? folder = null)
    {
        var verbose = parse.GetValue(VerboseOption);
        var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning));
        NativeLog.Route(loggerFactory);
        var options = new LanguageModelOptions { ExecutionProvider = parse.GetValue(ProviderOption), LoggerFactory = loggerFactory };
        try
        {
            options.WeightCacheDirectory = parse.GetValue(WeightCacheOption);
        }
        catch (InvalidOptionException e)
        {
            throw UsageException.For(e, "weight-cache");
        }

        if (folder is null)
        {
            // --dtype and --variant choose within the --model folder; another folder (a draft model) loads with its defaults.
            options.Dtype = parse.GetValue(DtypeOption);
            options.Variant = parse.GetValue(VariantOption);
        }

        var model = LanguageModel.Load(folder ?? ResolveModel(parse), options);
        if (verbose) Error.WriteLine(model.Info);
        return model;
    }

    /// <summary>Whitespace made visible in token views: a space as ·, a newline as ⏎, a carriage return as ␍, a tab as →.</summary>
    public static string Visible(string s) => s.Replace(" ", "·", StringComparison.Ordinal).Replace("\n", "⏎", StringComparison.Ordinal)
        .Replace("\r", "␍", StringComparison.Ordinal).Replace("\t", "→", StringComparison.Ordinal);

    /// <summary>
    /// Text from the argument, or standard input when it is "-", less one trailing line break (<c>\n</c> or <c>\r\n</c>),
    /// as shells strip command substitution: <c>echo "In the beginning" | onnxlm generate -</c> prompts with the words alone.
    /// </summary>
    public string ReadText(string? argument, string what)
    {
        if (argument is null) throw new UsageException($"no {what} given (give it as an argument, or - to read standard input).");
        return argument == "-" ? TrimOneLineBreak(Input.ReadToEnd()) : argument;
    }

    /// <summary>The text without its last line break, if it ends with one; only one, so deliberate blank lines survive.</summary>
    internal static string TrimOneLineBreak(string text) =>
        text.EndsWith("\r\n", StringComparison.Ordinal) ? text[..^2] : text.EndsWith('\n') ? text[..^1] : text;
}

/// <summary>A command line that parsed but makes no sense (an empty prompt, conflicting options): exit code 1.</summary>
internal sealed class UsageException(string message) : Exception(message)
{
    /// <summary>
    /// The usage error for an option the library refused: <c>--option: reason</c>, the flag being <paramref name="flag"/>
    /// or, by default, the option's property name in kebab case (<c>MaxNewTokens</c> → <c>--max-new-tokens</c>).
    /// </summary>
    public static UsageException For(InvalidOptionException e, string? flag = null) => new($"--{flag ?? Kebab(e.OptionName)}: {e.Reason}");

    private static string Kebab(string name) => string.Concat(name.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "-" : "") + char.ToLowerInvariant(c) : c.ToString()));
}
