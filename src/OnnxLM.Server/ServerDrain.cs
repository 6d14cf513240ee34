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
