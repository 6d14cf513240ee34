using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// appsettings.json's "OnnxLM" section configures the model (ModelPath: here the first argument or the kjv-tiny found
// above this folder); AddOnnxLM validates it when the host starts.
var builder = Host.CreateApplicationBuilder();
builder.Configuration.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: false);
builder.Configuration["OnnxLM:ModelPath"] ??= SampleModel.Find(args);
builder.Services.AddOnnxLM(builder.Configuration.GetSection("OnnxLM"));
builder.Services.AddHostedService<Verses>();
await builder.Build().RunAsync();

/// <summary>A worker that asks the model for a few continuations, several at once, then stops the host.</summary>
internal sealed class Verses(IChatClient chat, IHostApplicationLifetime lifetime, ILogger<Verses> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        string[] openings = ["In the beginning", "And God said", "The LORD is my shepherd", "Blessed are the meek"];
        var replies = await Task.WhenAll(openings.Select(o => chat.GetResponseAsync(o, new ChatOptions { Seed = 1 }, stoppingToken)));
        foreach (var (opening, reply) in openings.Zip(replies))
        {
            logger.LogInformation("{Opening} → {Reply} ({Input} + {Output} tokens)", opening, reply.Text.Trim(), reply.Usage?.InputTokenCount, reply.Usage?.OutputTokenCount);
        }

        lifetime.StopApplication();
    }
}
