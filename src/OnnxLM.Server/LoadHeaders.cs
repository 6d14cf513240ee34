namespace OnnxLM.Server;

/// <summary>
/// The response headers of <c>GET /health</c> that carry the server's load, read by <c>OnnxLM.Gateway</c>'s health checks
/// (which see the status line and headers only).
/// </summary>
public static class LoadHeaders
{
    /// <summary>Requests waiting in the models' queues.</summary>
    public const string Waiting = "x-onnxlm-waiting";

    /// <summary>Requests decoding now, as rows of the models' batches.</summary>
    public const string Running = "x-onnxlm-running";

    /// <summary>API requests the server is serving now (queued, running, or writing their response).</summary>
    public const string InFlight = "x-onnxlm-in-flight";

    /// <summary>
    /// The request header naming a chat's conversation: a request that sends it keeps the conversation's cached key/value
    /// session on this server, so its next turn prefills only its new tokens (<c>ChatOptions.ConversationId</c>).
    /// </summary>
    public const string ConversationId = "x-conversation-id";
}
