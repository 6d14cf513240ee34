using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace OnnxLM.Hosting;

/// <summary>Healthy when the model is loaded (data: model, provider, running and waiting requests); degraded before a lazy load; unhealthy when loading failed.</summary>
internal sealed class OnnxLMHealthCheck(OnnxLMModelHost host) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>
        {
            ["model"] = host.ModelId,
            ["running"] = host.Queue.Running,
            ["waiting"] = host.Queue.Waiting,
            ["max_waiting"] = host.Options.MaxQueueLength,
        };
        if (!host.IsLoaded)
        {
            if (host.Options.LoadEagerly)
            {
                try
                {
                    _ = host.Model; // the start-up load failed or is still running; this waits for it or rethrows its error
                }
                catch (Exception e)
                {
                    return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, $"Model '{host.ModelId}' failed to load: {e.Message}", e, data));
                }
            }
            else
            {
                return Task.FromResult(HealthCheckResult.Degraded($"Model '{host.ModelId}' loads on its first request.", data: data));
            }
        }

        data["provider"] = host.Model.Info.ExecutionProvider.ToString();
        return Task.FromResult(HealthCheckResult.Healthy($"Model '{host.ModelId}' is loaded on {host.Model.Info.ExecutionProvider}.", data));
    }
}
