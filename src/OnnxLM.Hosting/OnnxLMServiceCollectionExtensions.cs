using System.Diagnostics.Metrics;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OnnxLM;
using OnnxLM.Hosting;

// The .NET convention: registration extensions live in the namespace of IServiceCollection, so services.AddOnnxLM is
// found with no extra using; the options and services they register stay in OnnxLM.Hosting.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers hosted OnnxLM models: the <see cref="LanguageModel"/>, an <see cref="IChatClient"/>, start-up loading and a health check.</summary>
public static class OnnxLMServiceCollectionExtensions
{
    /// <summary>Registers a model configured in code: <c>services.AddOnnxLM(o => o.ModelPath = "models/kjv-tiny")</c>.</summary>
    public static IServiceCollection AddOnnxLM(this IServiceCollection services, Action<OnnxLMOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return Add(services, null, b => b.Configure(configure), nameof(OnnxLMOptions));
    }

    /// <summary>Registers a model bound from configuration: <c>services.AddOnnxLM(builder.Configuration.GetSection("OnnxLM"))</c>; an unknown key fails the start.</summary>
    public static IServiceCollection AddOnnxLM(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(section);
        return Add(services, null, b => b.Bind(section, o => o.ErrorOnUnknownConfiguration = true), Path(section));
    }

    /// <summary>Registers one of several models under a key: resolve it with <c>[FromKeyedServices("name")] IChatClient</c>.</summary>
    public static IServiceCollection AddKeyedOnnxLM(this IServiceCollection services, string serviceKey, Action<OnnxLMOptions> configure)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceKey);
        ArgumentNullException.ThrowIfNull(configure);
        return Add(services, serviceKey, b => b.Configure(configure), $"{nameof(OnnxLMOptions)}[{serviceKey}]");
    }

    /// <summary>Registers one of several models under a key, bound from configuration.</summary>
    public static IServiceCollection AddKeyedOnnxLM(this IServiceCollection services, string serviceKey, IConfiguration section)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceKey);
        ArgumentNullException.ThrowIfNull(section);
        return Add(services, serviceKey, b => b.Bind(section, o => o.ErrorOnUnknownConfiguration = true), Path(section));
    }

    private static string Path(IConfiguration section) => section is IConfigurationSection s ? s.Path : "OnnxLM";

    private static IServiceCollection Add(IServiceCollection services, string? key, Action<OptionsBuilder<OnnxLMOptions>> configure, string configurationPath)
    {
        ArgumentNullException.ThrowIfNull(services);
        var name = key ?? Microsoft.Extensions.Options.Options.DefaultName;
        configure(services.AddOptions<OnnxLMOptions>(name).ValidateOnStart());
        services.AddSingleton<IValidateOptions<OnnxLMOptions>>(new OnnxLMOptionsValidator(name, configurationPath));
        services.AddKeyedSingleton(key, (sp, _) => new OnnxLMModelHost(
            sp.GetRequiredService<IOptionsMonitor<OnnxLMOptions>>().Get(name), sp.GetService<ILoggerFactory>(), sp.GetService<IMeterFactory>()));
        // The host owns the model; the container disposes the host, which disposes the model.
        services.AddKeyedSingleton(key, (sp, k) => sp.GetRequiredKeyedService<OnnxLMModelHost>(k).Model);
        services.AddKeyedSingleton(key, (sp, k) => new OnnxLMChatClient(sp.GetRequiredKeyedService<OnnxLMModelHost>(k)));
        services.AddKeyedSingleton<IChatClient>(key, (sp, k) => sp.GetRequiredKeyedService<OnnxLMChatClient>(k));
        services.AddSingleton<IHostedService>(sp => new StartupService(sp.GetRequiredKeyedService<OnnxLMModelHost>(key)));
        return services;
    }

    /// <summary>
    /// Adds a health check of a hosted model (registered with <see cref="AddOnnxLM(IServiceCollection, Action{OnnxLMOptions})"/>
    /// or, with <paramref name="serviceKey"/>, a keyed one): healthy once loaded, with its provider and queue in the data.
    /// </summary>
    public static IHealthChecksBuilder AddOnnxLMCheck(this IHealthChecksBuilder builder, string? serviceKey = null, string? name = null,
        HealthStatus failureStatus = HealthStatus.Unhealthy, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Add(new HealthCheckRegistration(name ?? (serviceKey is null ? "onnxlm" : $"onnxlm-{serviceKey}"),
            sp => new OnnxLMHealthCheck(sp.GetRequiredKeyedService<OnnxLMModelHost>(serviceKey)), failureStatus, tags));
    }

    /// <summary>Loads (and warms up) the model when the host starts, when the options say so.</summary>
    private sealed class StartupService(OnnxLMModelHost host) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => host.StartAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
