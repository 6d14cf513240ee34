namespace OnnxLM.Gateway;

/// <summary>The headers the gateway reads and writes.</summary>
public static class GatewayHeaders
{
    /// <summary>The response header naming the replica that served the request (its base address).</summary>
    public const string Backend = "x-onnxlm-backend";

    /// <summary>The request header naming a conversation: the route's key when present, and what a replica keys its cached session by.</summary>
    public const string ConversationId = "x-conversation-id";

    // The replica's load, on its /health response (OnnxLM.Server.LoadHeaders).
    internal const string Waiting = "x-onnxlm-waiting";
    internal const string Running = "x-onnxlm-running";
    internal const string InFlight = "x-onnxlm-in-flight";
}
