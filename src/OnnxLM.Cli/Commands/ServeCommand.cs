using System.CommandLine;
using OnnxLM.Server;

namespace OnnxLM.Cli.Commands;

/// <summary><c>onnxlm serve</c>: the model behind an OpenAI-compatible HTTP API, with the playground at <c>/</c>.</summary>
internal static class ServeCommand
{
    /// <summary>The default of <c>--max-concurrent</c>: the library's default batch size, so that concurrent requests share each model run.</summary>
    public const int DefaultMaxConcurrent = LanguageModelOptions.DefaultMaxBatchSize;

    public static Command Create(CliContext cli)
    {
        var urls = new Option<string>("--urls") { Description = "Where to listen", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var name = new Option<string?>("--name") { Description = "The model's name in requests (default: the folder's name)" };
        var apiKeys = new Option<string[]>("--api-key") { Description = "Require Authorization: Bearer <key> (repeatable)" };
        var concurrent = new Option<int>("--max-concurrent")
        {
            Description = "Requests decoded at once, as rows of one batch per step (continuous batching); 1 decodes them one after another",
            DefaultValueFactory = _ => DefaultMaxConcurrent,
        };
        var queue = new Option<int>("--max-queue") { Description = "Requests that may wait; beyond that the server answers 429", DefaultValueFactory = _ => 64 };
        var drainTimeout = new Option<double>("--drain-timeout")
        {
            Description = "Seconds requests in flight may take to finish on shutdown (SIGTERM, Ctrl+C); new requests get 503 meanwhile",
            DefaultValueFactory = _ => 30,
        };
        var drainDelay = new Option<double>("--drain-delay")
        {
            Description = "Seconds a stopping server keeps listening with /health at 503 'draining' before it closes (time for a readiness probe to see it)",
            DefaultValueFactory = _ => 0,
        };
        var command = new Command("serve", "Serve the model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, ...) with a playground page")
        {
            urls, name, apiKeys, concurrent, queue, drainTimeout, drainDelay,
        };
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            var folder = Path.GetFullPath(cli.ResolveModel(parse));
            var modelName = parse.GetValue(name) ?? Path.GetFileName(folder.TrimEnd(Path.DirectorySeparatorChar));
            await using var app = OnnxLMServer.Create(folder, modelName, parse.GetValue(urls)!, o =>
            {
                foreach (var key in parse.GetValue(apiKeys) ?? []) o.ApiKeys.Add(key);
                if (parse.GetValue(CliContext.VerboseOption)) o.FrameworkLogLevel = Microsoft.Extensions.Logging.LogLevel.Information;
                o.DrainTimeout = TimeSpan.FromSeconds(parse.GetValue(drainTimeout));
                o.DrainDelay = TimeSpan.FromSeconds(parse.GetValue(drainDelay));
            }, o =>
            {
                o.ExecutionProvider = parse.GetValue(CliContext.ProviderOption);
                o.Dtype = parse.GetValue(CliContext.DtypeOption);
                o.Variant = parse.GetValue(CliContext.VariantOption);
                o.WeightCacheDirectory = parse.GetValue(CliContext.WeightCacheOption);
                o.MaxConcurrentSequences = parse.GetValue(concurrent);
                o.MaxQueueLength = parse.GetValue(queue);
            });
            await app.StartAsync(ct);
            cli.Error.WriteLine($"onnxlm: serving '{modelName}' at {string.Join(", ", app.Urls)} (playground at /, OpenAI API under /v1); Ctrl+C stops.");
            return await RunUntilStoppedAsync(app, ct);
        }));
        return command;
    }

    /// <summary>Keeps a started web app (the server or the gateway) running until Ctrl+C or SIGTERM, then stops it (draining).</summary>
    internal static async Task<int> RunUntilStoppedAsync(Microsoft.AspNetCore.Builder.WebApplication app, CancellationToken ct)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
        catch (OperationCanceledException)
        {
        }

        await app.StopAsync(CancellationToken.None);
        return 0;
    }
}
