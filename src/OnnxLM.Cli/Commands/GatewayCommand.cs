using System.CommandLine;
using OnnxLM.Gateway;

namespace OnnxLM.Cli.Commands;

/// <summary><c>onnxlm gateway</c>: YARP in front of several <c>onnxlm serve</c> replicas, routing each conversation to the replica that holds its cache.</summary>
internal static class GatewayCommand
{
    public static Command Create(CliContext cli)
    {
        var backends = new Option<string[]>("--backend")
        {
            Description = "A replica's base address, e.g. http://127.0.0.1:8081 (repeat for each replica)",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var urls = new Option<string>("--urls") { Description = "Where to listen", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var roundRobin = new Option<bool>("--round-robin") { Description = "Ignore caches and rotate over the replicas (the baseline cache-aware routing is measured against)" };
        var spill = new Option<int>("--spill-threshold")
        {
            Description = "Requests in flight at which a conversation's replica counts as full and new requests go to the next one",
            DefaultValueFactory = _ => new OnnxLMGatewayOptions().SpillThreshold,
        };
        var anonymous = new Option<bool>("--no-conversation-ids")
        {
            Description = "Do not name conversations to the replicas (x-conversation-id): a batching replica then decodes chats as batch rows but keeps no cache for their next turn",
        };
        var interval = new Option<double>("--health-interval") { Description = "Seconds between health probes of each replica's /health", DefaultValueFactory = _ => 5 };
        var command = new Command("gateway", "Route OpenAI-compatible requests over several onnxlm serve replicas: each conversation to the replica holding its cache, with health checks and retries")
        {
            backends, urls, roundRobin, spill, interval, anonymous,
        };
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            var listen = parse.GetValue(urls)!;
            await using var app = OnnxLMGateway.Create(listen, o =>
            {
                foreach (var backend in parse.GetValue(backends) ?? [])
                {
                    o.Backends.Add(Uri.TryCreate(backend, UriKind.Absolute, out var uri)
                        ? uri : throw new ArgumentException($"--backend '{backend}' is not an absolute address such as http://127.0.0.1:8081."));
                }

                o.Routing = parse.GetValue(roundRobin) ? GatewayRouting.RoundRobin : GatewayRouting.CacheAware;
                o.SpillThreshold = parse.GetValue(spill);
                o.HealthCheckInterval = TimeSpan.FromSeconds(parse.GetValue(interval));
                o.NameConversations = !parse.GetValue(anonymous);
            });
            await app.StartAsync(ct);
            var mode = parse.GetValue(roundRobin) ? "round robin" : "cache-aware";
            cli.Error.WriteLine($"onnxlm: gateway at {string.Join(", ", app.Urls)} over {string.Join(", ", parse.GetValue(backends)!)} ({mode}); Ctrl+C stops.");
            return await ServeCommand.RunUntilStoppedAsync(app, ct);
        }));
        return command;
    }
}
