namespace OnnxLM.Hub;

/// <summary>Where the cache is, which Hub to ask and how: built from the environment as huggingface_hub reads it, or set by hand.</summary>
public sealed class ModelHubOptions
{
    /// <summary>The public Hub, used when <c>HF_ENDPOINT</c> is not set.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>The hub cache folder holding <c>models--org--name</c> folders (default: <c>HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>, else <c>~/.cache/huggingface/hub</c>).</summary>
    public string CacheDirectory { get; set => field = NotBlank(value, nameof(CacheDirectory)); } = DefaultCacheDirectory(static name => Environment.GetEnvironmentVariable(name));

    /// <summary>The Hub's address (default <see cref="DefaultEndpoint"/>, or <c>HF_ENDPOINT</c>).</summary>
    public Uri Endpoint { get; set => field = HttpAddress(value, nameof(Endpoint)); } = new(DefaultEndpoint);

    /// <summary>The access token for private and gated repositories (<c>HF_TOKEN</c>, else the token file <c>$HF_HOME/token</c>); null sends none.</summary>
    public string? Token { get; set; }

    /// <summary>Make no request and use only the cache (<c>HF_HUB_OFFLINE=1</c>).</summary>
    public bool Offline { get; set; }

    /// <summary>
    /// The client to send requests with (default: one of the hub's own). It should not follow redirects itself: the hub
    /// reads an LFS file's sha256 and size from the redirect (it falls back to the repository listing when it cannot).
    /// </summary>
    public HttpClient? HttpClient { get; set; }

    /// <summary>How many files download at once (default 4).</summary>
    public int MaxParallelDownloads { get; set => field = AtLeast(value, 1, nameof(MaxParallelDownloads)); } = 4;

    /// <summary>How many times a request is retried after a 5xx, a 429 or a dropped connection (default 5; 0 never retries).</summary>
    public int MaxRetries { get; set => field = AtLeast(value, 0, nameof(MaxRetries)); } = 5;

    /// <summary>The first retry's delay, doubled for each next one (default 1 s).</summary>
    public TimeSpan RetryDelay { get; set => field = AtLeast(value, TimeSpan.Zero, nameof(RetryDelay)); } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between tries, whatever the backoff or a <c>Retry-After</c> header asks (default 60 s).</summary>
    public TimeSpan MaxRetryDelay { get; set => field = AtLeast(value, TimeSpan.Zero, nameof(MaxRetryDelay)); } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Options from the environment variables huggingface_hub reads: <c>HF_HUB_CACHE</c> (wins over <c>HF_HOME</c>),
    /// <c>HF_HOME</c>, <c>HF_ENDPOINT</c>, <c>HF_TOKEN</c> (else the file <c>HF_TOKEN_PATH</c> or <c>$HF_HOME/token</c>) and <c>HF_HUB_OFFLINE</c>.
    /// </summary>
    public static ModelHubOptions FromEnvironment() => FromEnvironment(static name => Environment.GetEnvironmentVariable(name));

    internal static ModelHubOptions FromEnvironment(Func<string, string?> variable)
    {
        var options = new ModelHubOptions { CacheDirectory = DefaultCacheDirectory(variable) };
        if (NonEmpty(variable("HF_ENDPOINT")) is { } endpoint)
        {
            options.Endpoint = Uri.TryCreate(endpoint.TrimEnd('/'), UriKind.Absolute, out var uri)
                ? uri
                : throw new ArgumentException($"HF_ENDPOINT '{endpoint}' is not an absolute http(s) address.");
        }

        options.Token = NonEmpty(variable("HF_TOKEN")) ?? NonEmpty(variable("HUGGING_FACE_HUB_TOKEN")) ?? ReadTokenFile(NonEmpty(variable("HF_TOKEN_PATH")) ?? Path.Combine(HfHome(variable), "token"));
        options.Offline = IsTrue(variable("HF_HUB_OFFLINE")) || IsTrue(variable("TRANSFORMERS_OFFLINE"));
        return options;
    }

    // huggingface_hub's constants: HF_HUB_CACHE, then the legacy HUGGINGFACE_HUB_CACHE, then $HF_HOME/hub, where HF_HOME
    // defaults to $XDG_CACHE_HOME/huggingface and XDG_CACHE_HOME to ~/.cache.
    private static string DefaultCacheDirectory(Func<string, string?> variable) =>
        NonEmpty(variable("HF_HUB_CACHE")) ?? NonEmpty(variable("HUGGINGFACE_HUB_CACHE")) ?? Path.Combine(HfHome(variable), "hub");

    private static string HfHome(Func<string, string?> variable) =>
        NonEmpty(variable("HF_HOME")) ?? Path.Combine(NonEmpty(variable("XDG_CACHE_HOME")) ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");

    private static string? ReadTokenFile(string path)
    {
        try
        {
            return File.Exists(path) ? NonEmpty(File.ReadAllText(path).Trim()) : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    // huggingface_hub's ENV_VARS_TRUE_VALUES.
    private static bool IsTrue(string? value) => value?.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static string NotBlank(string value, string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value, name);
        return value;
    }

    private static T AtLeast<T>(T value, T minimum, string name)
        where T : IComparable<T>
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(value, minimum, name);
        return value;
    }

    private static Uri HttpAddress(Uri value, string name)
    {
        ArgumentNullException.ThrowIfNull(value, name);
        if (!value.IsAbsoluteUri || (value.Scheme != Uri.UriSchemeHttp && value.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"{name} must be an absolute http(s) address, not '{value}'.", name);
        }

        return value;
    }
}
