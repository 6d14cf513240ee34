namespace OnnxLM.Server;

/// <summary>Settings of the OpenAI-compatible server.</summary>
public sealed class OnnxLMServerOptions
{
    private TimeSpan _minRequestBodyGracePeriod = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The models served, by the name requests use in <c>model</c>; each must be registered with
    /// <c>AddKeyedOnnxLM(name, …)</c>. The first is the default when a request names none.
    /// </summary>
    public IList<string> Models { get; } = [];

    /// <summary>API keys accepted as <c>Authorization: Bearer &lt;key&gt;</c>; empty (the default) accepts every request.</summary>
    public IList<string> ApiKeys { get; } = [];

    /// <summary>The largest request body in bytes (default 4 MiB); larger ones get 413.</summary>
    public long MaxRequestBodyBytes { get; set => field = Positive(value, nameof(MaxRequestBodyBytes)); } = 4 * 1024 * 1024;

    /// <summary>The most completions one request may ask for with <c>n</c> (default 16).</summary>
    public int MaxChoices { get; set => field = Positive(value, nameof(MaxChoices)); } = 16;

    /// <summary>
    /// The most prompts one completions request may send as a list (default 64); more is a 400 naming <c>prompt</c>,
    /// before any prompt is tokenized.
    /// </summary>
    public int MaxPrompts { get; set => field = Positive(value, nameof(MaxPrompts)); } = 64;

    /// <summary>
    /// The most completions one request may produce in all, prompts × <c>n</c> (default 64): each prompt and <c>n</c> may be
    /// within its own cap and their product still be too much work for one request.
    /// </summary>
    public int MaxTotalChoices { get; set => field = Positive(value, nameof(MaxTotalChoices)); } = 64;

    /// <summary>
    /// The longest text, in characters, the explain endpoints take (<c>/explain/next</c>, <c>/explain/tokens</c>,
    /// <c>/explain/attention</c>; default 8,192); longer is a 400 naming the field and this limit.
    /// </summary>
    /// <remarks>The views are for reading a sentence or a paragraph: their responses grow with the text (attention with its square).</remarks>
    public int MaxExplainTextLength { get; set => field = Positive(value, nameof(MaxExplainTextLength)); } = 8192;

    /// <summary>The most new tokens one request may ask for with <c>max_tokens</c> / <c>max_completion_tokens</c> (default 4,096); more is a 400 naming the field.</summary>
    public int MaxOutputTokens { get; set => field = Positive(value, nameof(MaxOutputTokens)); } = 4096;

    /// <summary>
    /// The slowest a client may send its request body, in bytes per second once <see cref="MinRequestBodyGracePeriod"/>
    /// has passed (default 240 B/s after 5 s, Kestrel's own default, stated here so it is visible and tunable): a client
    /// that trickles its body is disconnected (408) instead of holding a connection open.
    /// </summary>
    public double MinRequestBodyBytesPerSecond { get; set => field = Positive(value, nameof(MinRequestBodyBytesPerSecond)); } = 240;

    /// <summary>How long a request body may arrive slower than <see cref="MinRequestBodyBytesPerSecond"/> before the client is cut off (default 5 s).</summary>
    public TimeSpan MinRequestBodyGracePeriod
    {
        get => _minRequestBodyGracePeriod;
        set => _minRequestBodyGracePeriod = value > TimeSpan.FromSeconds(1) ? value
            : throw new ArgumentOutOfRangeException(nameof(MinRequestBodyGracePeriod), value, "MinRequestBodyGracePeriod must be longer than 1 second (Kestrel's minimum).");
    }

    /// <summary>How long a client may take to send its request headers (default 30 s).</summary>
    /// <remarks>
    /// A setting of the whole Kestrel server, so only <see cref="OnnxLMServer.Create"/> applies it; an application that maps
    /// the endpoints itself keeps its own (the body limits above apply to the endpoints' requests either way).
    /// </remarks>
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Serve the playground page at <c>/</c> (default true).</summary>
    public bool Playground { get; set; } = true;

    /// <summary>
    /// Serve <c>/metrics</c> (default true): the <see cref="OnnxLM.Hosting.OnnxLMTelemetry.Name"/> meter's instruments in
    /// Prometheus's text format. An application that exports with OpenTelemetry itself turns this off and adds the meter there.
    /// </summary>
    public bool Metrics { get; set; } = true;

    /// <summary>
    /// The least level logged from ASP.NET Core's and the host's own categories (<c>Microsoft.*</c>, <c>System.*</c>) by a
    /// server made with <see cref="OnnxLMServer.Create"/> (default <see cref="Microsoft.Extensions.Logging.LogLevel.Warning"/>);
    /// the server's one line per request (<c>OnnxLM.Server</c>, method, path, status, time) stays at Information either way.
    /// </summary>
    public Microsoft.Extensions.Logging.LogLevel FrameworkLogLevel { get; set; } = Microsoft.Extensions.Logging.LogLevel.Warning;

    /// <summary>
    /// How long a server made with <see cref="OnnxLMServer.Create"/> lets requests in flight finish when it shuts down
    /// (SIGTERM, Ctrl+C, <c>StopAsync</c>; default 30 s): from the moment it starts draining it admits no new API request
    /// (503 with <c>Retry-After</c>) and <c>/health</c> answers 503 <c>draining</c>; what is still running after this is cut off.
    /// </summary>
    public TimeSpan DrainTimeout { get; set => field = value >= TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(DrainTimeout), value, "DrainTimeout must not be negative."); } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a draining server keeps listening before it closes its listener (default 0): time for a load balancer's
    /// health checks or a Kubernetes readiness probe to see <c>/health</c> turn 503 and stop sending, so that requests
    /// already on their way are answered 503 with <c>Retry-After</c> rather than refused at connect. Counts within no other timeout.
    /// </summary>
    public TimeSpan DrainDelay { get; set => field = value >= TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(DrainDelay), value, "DrainDelay must not be negative."); } = TimeSpan.Zero;

    private static T Positive<T>(T value, string name)
        where T : System.Numerics.INumber<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value, name);
        return value;
    }
}
