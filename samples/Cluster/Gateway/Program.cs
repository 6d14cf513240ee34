using Microsoft.Extensions.Configuration;
using OnnxLM.Gateway;

// Service discovery, Aspire's way: every reference arrives as services__<name>__http__0=<address> in the environment.
var configuration = new ConfigurationBuilder().AddEnvironmentVariables().AddCommandLine(args).Build();
var backends = configuration.GetSection("services").GetChildren()
    .Where(s => s.Key.StartsWith("replica", StringComparison.Ordinal))
    .SelectMany(s => s.GetSection("http").GetChildren().Select(e => e.Value))
    .OfType<string>().ToList();
if (backends.Count == 0) throw new InvalidOperationException("No replica addresses: run under the Aspire app host, or pass --services:replica0:http:0=http://127.0.0.1:8081.");
var port = configuration["PORT"] ?? "8080";
await using var app = OnnxLMGateway.Create($"http://127.0.0.1:{port}", o =>
{
    foreach (var backend in backends) o.Backends.Add(new Uri(backend));
    o.HealthCheckInterval = TimeSpan.FromSeconds(2);
});
Console.WriteLine($"gateway on port {port} over {string.Join(", ", backends)}");
await app.RunAsync();
