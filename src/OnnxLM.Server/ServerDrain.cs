using Microsoft.Extensions.Hosting;

namespace OnnxLM.Server;

/// <summary>
/// The server's readiness for a router: whether it is draining (shutting down: new API requests get 503 with
/// <c>Retry-After</c>, <c>/health</c> answers <c>draining</c>) and how many API requests it is serving now.
/// </summary>
internal sealed class ServerDrain
{
    private int _inFlight;
    private volatile bool _draining;

    /// <summary>Whether the server has begun to shut down.</summary>
    public bool Draining => _draining;

    /// <summary>API requests being served now (admitted, not yet answered).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Stops admitting new API requests; those in flight finish.</summary>
    public void Begin() => _draining = true;

    /// <summary>Counts one request in; dispose the result when it is answered.</summary>
    public Admission Enter()
    {
        Interlocked.Increment(ref _inFlight);
        return new Admission(this);
    }

    /// <summary>One request counted in; the default value counts nothing.</summary>
    internal readonly struct Admission(ServerDrain? drain) : IDisposable
    {
        public void Dispose()
        {
            if (drain is not null) Interlocked.Decrement(ref drain._inFlight);
        }
    }
}

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
