using System.Globalization;
using Microsoft.Extensions.Logging;

namespace OnnxLM.Cli;

/// <summary>The <c>onnxlm</c> command line: <c>generate</c>, <c>chat</c> and <c>perplexity</c>.</summary>
internal static class CliApp
{
    public const string DefaultModel = "models/kjv-tiny";

    private const string Usage = """
        usage: onnxlm generate [--model <folder>] [options] "prompt"
               onnxlm chat [--model <folder>] [--system <text>] [options]
                 (a conversation on standard input, one message per line; /reset starts over, /exit or end of input stops;
                  the model's chat template, or a plain User:/Assistant: one for models without)
               onnxlm perplexity [--model <folder>] [--window <n>] [--stride <n>] <text-file>
                 (each non-empty line is one document; prints tokens, perplexity and bits per byte)

        options:
          --model <folder>         model folder (default: models/kjv-tiny)
          --max-new-tokens <n>     tokens to generate (default 100)
          --temperature <t>        0 = greedy (default 0.8)
          --top-k <k>              keep the k most likely tokens (default 0 = off)
          --top-p <p>              nucleus sampling threshold in (0, 1] (default 0.95)
          --min-p <p>              keep tokens at least p times as likely as the top one (default 0 = off)
          --repetition-penalty <r> Hugging Face repetition penalty (default 1 = off)
          --stop <text>            stop when the output contains this text (repeatable)
          --sampler-order <hf|llama.cpp>  order of the sampling stages (default hf)
          --seed <n>               random seed for reproducible sampling
          --provider <auto|cpu|cuda>  execution provider (default auto)
          --verbose                log provider selection and model info (chat: token counts per turn)
        """;

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, TextReader? input = null)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            output.WriteLine(Usage);
            return args.Length == 0 ? 1 : 0;
        }

        if (args[0] is not ("generate" or "chat" or "perplexity"))
        {
            error.WriteLine($"onnxlm: unknown command '{args[0]}'.");
            error.WriteLine(Usage);
            return 1;
        }

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            return args[0] switch
            {
                "generate" => await GenerateAsync(args[1..], output, error, cancel.Token),
                "chat" => await ChatAsync(args[1..], input ?? Console.In, output, error, cancel.Token),
                _ => await PerplexityAsync(args[1..], output, cancel.Token),
            };
        }
        catch (CliUsageException e)
        {
            error.WriteLine($"onnxlm: {e.Message}");
            error.WriteLine(Usage);
            return 1;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine();
            error.WriteLine("onnxlm: cancelled.");
            return 130;
        }
        catch (Exception e) when (e is OnnxLMException or ArgumentException)
        {
            error.WriteLine($"onnxlm: {e.Message}");
            return 2;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>The options generate and chat share: model, sampling, provider, verbosity.</summary>
    private sealed class GenerationArguments
    {
        public string? ModelPath;
        public bool Verbose;
        public string? System;
        public List<string> Positional { get; } = [];
        public GenerationOptions Options { get; } = new() { MaxNewTokens = 100, Temperature = 0.8f, TopP = 0.95f };
        public LanguageModelOptions LoadOptions { get; } = new();

        public static GenerationArguments Parse(string[] args, bool allowSystem)
        {
            var parsed = new GenerationArguments();
            var options = parsed.Options;
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new CliUsageException($"{args[i]} needs a value.");
                switch (args[i])
                {
                    case "--model": parsed.ModelPath = Value(); break;
                    case "--system" when allowSystem: parsed.System = Value(); break;
                    case "--max-new-tokens": options.MaxNewTokens = ParseInt(args[i], Value()); break;
                    case "--temperature": options.Temperature = ParseFloat(args[i], Value()); break;
                    case "--top-k": options.TopK = ParseInt(args[i], Value()); break;
                    case "--top-p": options.TopP = ParseFloat(args[i], Value()); break;
                    case "--min-p": options.MinP = ParseFloat(args[i], Value()); break;
                    case "--repetition-penalty": options.RepetitionPenalty = ParseFloat(args[i], Value()); break;
                    case "--stop": options.StopSequences.Add(Value()); break;
                    case "--sampler-order":
                        options.SamplerOrder = Value() switch
                        {
                            "hf" => SamplerOrders.HuggingFace,
                            "llama.cpp" => SamplerOrders.LlamaCpp,
                            _ => throw new CliUsageException("--sampler-order must be hf or llama.cpp."),
                        };
                        break;
                    case "--seed": options.Seed = ParseInt(args[i], Value()); break;
                    case "--provider":
                        parsed.LoadOptions.ExecutionProvider = Enum.TryParse<ExecutionProvider>(Value(), ignoreCase: true, out var p)
                            ? p : throw new CliUsageException("--provider must be auto, cpu or cuda.");
                        break;
                    case "--verbose": parsed.Verbose = true; break;
                    case var a when a.StartsWith("--", StringComparison.Ordinal): throw new CliUsageException($"unknown option {a}.");
                    default: parsed.Positional.Add(args[i]); break;
                }
            }

            return parsed;
        }

        public LanguageModel Load(ILoggerFactory loggerFactory)
        {
            var path = ModelPath ?? FindDefaultModel() ?? throw new OnnxLMException(
                $"The default model folder '{DefaultModel}' was not found (looked in the current folder and its parents). " +
                "Give a model folder with --model, or build the default model (build/train-default-model/README.md says how).");
            LoadOptions.LoggerFactory = loggerFactory;
            return LanguageModel.Load(path, LoadOptions);
        }
    }

    private static ILoggerFactory CreateLoggerFactory(bool verbose) => LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true)
        .SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning));

    private static async Task<int> GenerateAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var parsed = GenerationArguments.Parse(args, allowSystem: false);
        var (options, verbose) = (parsed.Options, parsed.Verbose);
        var prompt = parsed.Positional switch
        {
            [] => throw new CliUsageException("no prompt given."),
            [var one] => one,
            _ => throw new CliUsageException("give the prompt as one quoted argument."),
        };

        using var loggerFactory = CreateLoggerFactory(verbose);
        using var model = parsed.Load(loggerFactory);
        if (verbose)
        {
            error.WriteLine(model.Info);
        }

        output.Write(prompt);
        FinishReason? finish = null;
        var count = 0;
        var started = System.Diagnostics.Stopwatch.StartNew();
        await foreach (var token in model.GenerateStreamingAsync(prompt, options, cancellationToken))
        {
            output.Write(token.Text);
            await output.FlushAsync(cancellationToken);
            finish = token.FinishReason;
            count++;
        }

        output.WriteLine();
        if (verbose)
        {
            error.WriteLine($"[{count} tokens in {started.Elapsed.TotalSeconds:F2} s, finish: {finish}]");
        }

        return 0;
    }

    private static async Task<int> ChatAsync(string[] args, TextReader input, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var parsed = GenerationArguments.Parse(args, allowSystem: true);
        if (parsed.Positional.Count > 0) throw new CliUsageException($"chat reads its messages from standard input; unexpected '{parsed.Positional[0]}'.");
        using var loggerFactory = CreateLoggerFactory(parsed.Verbose);
        using var model = parsed.Load(loggerFactory);
        if (!model.HasChatTemplate)
        {
            error.WriteLine("onnxlm: this model has no chat template; using the plain User:/Assistant: one.");
        }

        var sessionOptions = new Chat.ChatSessionOptions { SystemPrompt = parsed.System, Overflow = Chat.ChatOverflow.DropOldestTurns };
        var chat = model.CreateChat(sessionOptions);
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var line = await input.ReadLineAsync(cancellationToken);
                if (line is null || line.Trim() == "/exit") break;
                if (line.Trim() == "/reset")
                {
                    chat.Dispose();
                    chat = model.CreateChat(sessionOptions);
                    continue;
                }

                if (string.IsNullOrWhiteSpace(line)) continue;
                try
                {
                    await foreach (var token in chat.SendStreamingAsync(line, parsed.Options, cancellationToken))
                    {
                        output.Write(token.Text);
                        await output.FlushAsync(cancellationToken);
                    }
                }
                catch (Chat.TemplateException e)
                {
                    error.WriteLine($"onnxlm: the chat template refused the conversation: {e.Message}");
                    continue;
                }

                output.WriteLine();
                if (parsed.Verbose && chat.LastReply is { } reply)
                {
                    error.WriteLine($"[prompt {reply.PromptTokenCount} tokens, {reply.ReusedTokenCount} reused from the cache, {reply.Result.TokenIds.Count} generated, finish: {reply.Result.FinishReason}]");
                }
            }
        }
        finally
        {
            chat.Dispose();
        }

        return 0;
    }

    private static async Task<int> PerplexityAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        string? modelPath = null;
        string? file = null;
        var options = new PerplexityOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new CliUsageException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--model": modelPath = Value(); break;
                case "--window": options.WindowLength = ParseInt(args[i], Value()); break;
                case "--stride": options.Stride = ParseInt(args[i], Value()); break;
                case var a when a.StartsWith("--", StringComparison.Ordinal): throw new CliUsageException($"unknown option {a}.");
                default: file = file is null ? args[i] : throw new CliUsageException("give one text file."); break;
            }
        }

        if (file is null || !File.Exists(file))
        {
            throw new CliUsageException(file is null ? "no text file given." : $"text file '{file}' does not exist.");
        }

        modelPath ??= FindDefaultModel() ?? throw new OnnxLMException($"The default model folder '{DefaultModel}' was not found; give --model.");
        using var model = LanguageModel.Load(modelPath);
        double logProb = 0;
        long tokens = 0, bytes = 0, words = 0, documents = 0;
        foreach (var line in File.ReadLines(file))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            var result = await model.ScorePerplexityAsync(line, options, null, cancellationToken);
            (logProb, tokens, bytes, words) = (logProb + result.LogProb, tokens + result.TokenCount, bytes + result.ByteCount, words + result.WordCount);
            documents++;
        }

        output.WriteLine(FormattableString.Invariant(
            $"{documents} documents, {tokens} tokens, {bytes} bytes: log-prob {logProb:F1}, perplexity {Math.Exp(-logProb / tokens):F3}, bits per byte {-logProb / Math.Log(2) / bytes:F4}, word perplexity {Math.Exp(-logProb / words):F2}"));
        return 0;
    }

    /// <summary>Finds models/kjv-tiny in the current folder or a parent (so it works from anywhere inside the repository).</summary>
    private static string? FindDefaultModel()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, DefaultModel);
                if (Directory.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    private static int ParseInt(string option, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new CliUsageException($"{option} needs an integer, got '{value}'.");

    private static float ParseFloat(string option, string value) =>
        float.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : throw new CliUsageException($"{option} needs a number, got '{value}'.");

    private sealed class CliUsageException(string message) : Exception(message);
}
