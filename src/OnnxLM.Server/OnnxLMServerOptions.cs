namespace OnnxLM.Server;

/// <summary>Settings of the OpenAI-compatible server.</summary>
public sealed class OnnxLMServerOptions
{
    /// <summary>
    /// The models served, by the name requests use in <c>model</c>; each must be registered with
    /// <c>AddKeyedOnnxLM(name, …)</c>. The first is the default when a request names none.
    /// </summary>
    public IList<string> Models { get; } = [];

    /// <summary>API keys accepted as <c>Authorization: Bearer &lt;key&gt;</c>; empty (the default) accepts every request.</summary>
    public IList<string> ApiKeys { get; } = [];

    /// <summary>The largest request body in bytes (default 4 MiB); larger ones get 413.</summary>
    public long MaxRequestBodyBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>The most completions one request may ask for with <c>n</c> (default 16).</summary>
    public int MaxChoices { get; set; } = 16;

    /// <summary>Serve the playground page at <c>/</c> (default true).</summary>
    public bool Playground { get; set; } = true;
}
