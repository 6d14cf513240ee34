using System.Text;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OnnxLM.Hosting;
using OnnxLM.Sampling;

namespace OnnxLM.Hosting.Tests;

internal static class Support
{
    public static readonly string RepoRoot = FindRoot();

    public static readonly string KjvTiny = Path.Combine(RepoRoot, "models", "kjv-tiny");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OnnxLM.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("Could not find OnnxLM.sln above " + AppContext.BaseDirectory);
    }

    /// <summary>A started host with OnnxLM bound from an appsettings.json-style document.</summary>
    public static async Task<IHost> StartAsync(string appsettingsJson, Action<IServiceCollection>? more = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(appsettingsJson)));
        builder.Services.AddOnnxLM(builder.Configuration.GetSection("OnnxLM"));
        more?.Invoke(builder.Services);
        var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return host;
    }

    public static string Settings(string extra = "") =>
        $$"""{ "OnnxLM": { "ModelPath": {{System.Text.Json.JsonSerializer.Serialize(KjvTiny)}}, "ExecutionProvider": "Cpu"{{extra}} } }""";

    public static ChatOptions Greedy(int maxTokens = 12) => new() { Temperature = 0, MaxOutputTokens = maxTokens };
}

/// <summary>Picks a fixed token sequence, then the end token, and remembers the prompt it was given.</summary>
internal sealed class ScriptedPicker(int[] script, int end) : ITokenPicker
{
    public int[]? Prompt { get; private set; }

    public int Pick(ReadOnlySpan<float> logits, SamplingContext context)
    {
        Prompt ??= context.Tokens[..context.PromptLength].ToArray();
        return context.GeneratedCount < script.Length ? script[context.GeneratedCount] : end;
    }
}

/// <summary>Copies the logits the built-in stages leave, step by step.</summary>
internal sealed class RecordingProcessor : ILogitProcessor
{
    public List<float[]> Steps { get; } = [];

    public void Process(Span<float> logits, SamplingContext context) => Steps.Add(logits.ToArray());
}
