namespace OnnxLM.Gateway;

/// <summary>Settings of the gateway: the replicas behind it, how it routes, and its limits.</summary>
public sealed class OnnxLMGatewayOptions
{
    /// <summary>The replicas' base addresses (<c>http://host:port</c>), each an <c>onnxlm serve</c> or an app with the OnnxLM.Server endpoints.</summary>
    public IList<Uri> Backends { get; } = [];

    /// <summary>How requests choose a replica (default <see cref="GatewayRouting.CacheAware"/>).</summary>
    public GatewayRouting Routing { get; set; } = GatewayRouting.CacheAware;

    /// <summary>
    /// The load (requests in flight through this gateway, or reported in flight by the replica, whichever is higher) at
    /// which a conversation's owner counts as full and new requests spill to the next replica in the conversation's
    /// rendezvous order that is below it (default 8; the least-loaded replica when all are full).
    /// </summary>
    public int SpillThreshold { get; set => field = Positive(value, nameof(SpillThreshold)); } = 8;

    /// <summary>The largest request body in bytes the gateway reads to route (default 4 MiB, the server's own default); larger ones get 413.</summary>
    public long MaxRequestBodyBytes { get; set => field = Positive(value, nameof(MaxRequestBodyBytes)); } = 4 * 1024 * 1024;

    /// <summary>How much of a completions prompt keys its route: this many characters of a text prompt, or tokens of a token-id prompt (default 256).</summary>
    public int PromptPrefixLength { get; set => field = Positive(value, nameof(PromptPrefixLength)); } = 256;

    /// <summary>The replicas' health endpoint, probed by YARP's active health checks (default <c>/health</c>: 200 ready, 503 loading or draining).</summary>
    public string HealthPath { get; set; } = "/health";

    /// <summary>How often each replica's health endpoint is probed (default 5 s).</summary>
    public TimeSpan HealthCheckInterval { get; set => field = PositiveTime(value, nameof(HealthCheckInterval)); } = TimeSpan.FromSeconds(5);

    /// <summary>How long one health probe may take before the replica counts as unhealthy (default 2 s).</summary>
    public TimeSpan HealthCheckTimeout { get; set => field = PositiveTime(value, nameof(HealthCheckTimeout)); } = TimeSpan.FromSeconds(2);

    /// <summary>How long a replica that refused a connection stays out of rotation before it is tried again (default 10 s; an active probe that succeeds does not shorten it).</summary>
    public TimeSpan ReactivationPeriod { get; set => field = PositiveTime(value, nameof(ReactivationPeriod)); } = TimeSpan.FromSeconds(10);

    /// <summary>How many other replicas a request that never reached its replica (connection refused, or answered 503 draining) is sent to (default 2).</summary>
    public int MaxRetries { get; set => field = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(MaxRetries), value, "MaxRetries must not be negative."); } = 2;

    /// <summary>How long a replica may send nothing before the request is cut off (default 10 min: a long non-streamed generation sends nothing until it ends).</summary>
    public TimeSpan ActivityTimeout { get; set => field = PositiveTime(value, nameof(ActivityTimeout)); } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Name each chat's conversation to its replica with the <c>x-conversation-id</c> header (the hash of its stable prefix)
    /// when the client sends none (default true): a replica that batches keeps a named conversation's key/value cache for
    /// its next turn, which an unnamed request does not get.
    /// </summary>
    public bool NameConversations { get; set; } = true;

    /// <summary>Checks the options as a whole.</summary>
    /// <exception cref="ArgumentException">No backend, a backend that is not an absolute http(s) address, or a health path not starting with '/'.</exception>
    public void Validate()
    {
        if (Backends.Count == 0) throw new ArgumentException("The gateway needs at least one backend (--backend http://host:port).", nameof(Backends));
        foreach (var backend in Backends)
        {
            if (backend is null || !backend.IsAbsoluteUri || backend.Scheme is not ("http" or "https"))
            {
                throw new ArgumentException($"The backend '{backend}' is not an absolute http:// or https:// address.", nameof(Backends));
            }
        }

        if (Backends.Distinct().Count() != Backends.Count) throw new ArgumentException("The same backend is listed twice.", nameof(Backends));
        if (string.IsNullOrEmpty(HealthPath) || HealthPath[0] != '/') throw new ArgumentException($"HealthPath '{HealthPath}' must start with '/'.", nameof(HealthPath));
    }

    private static T Positive<T>(T value, string name)
        where T : System.Numerics.INumber<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value, name);
        return value;
    }

    private static TimeSpan PositiveTime(TimeSpan value, string name) =>
        value > TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive.");
}
