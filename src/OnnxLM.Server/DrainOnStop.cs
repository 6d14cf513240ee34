using Microsoft.Extensions.Hosting;

namespace OnnxLM.Server;

/// <summary>
/// When the host begins to stop, before any hosted service stops (the web server included: <see cref="IHostedLifecycleService.StoppingAsync"/>):
/// marks the server draining, then waits <see cref="OnnxLMServerOptions.DrainDelay"/> while the server still listens, so
/// that routers and orchestrators see <c>/health</c> go not-ready before the listener closes.
/// </summary>
internal sealed class DrainOnStop(ServerDrain drain, OnnxLMServerOptions options) : IHostedLifecycleService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        drain.Begin();
        if (options.DrainDelay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(options.DrainDelay, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}
