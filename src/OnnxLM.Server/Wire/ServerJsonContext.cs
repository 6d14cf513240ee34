using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using OnnxLM.Explain;

namespace OnnxLM.Server.Wire;

/// <summary>
/// The server's own responses, serialized by source-generated code with OpenAI's snake_case names; independent of the
/// host's <c>JsonOptions</c>, so an application that maps the endpoints keeps its own JSON settings for its own endpoints.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(Completion))]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(ChatChunk))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(TokenizeResponse))]
[JsonSerializable(typeof(DetokenizeResponse))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(AttentionResponse))]
[JsonSerializable(typeof(CacheResponse))]
internal sealed partial class ServerJsonContext : JsonSerializerContext;

/// <summary>The core's explain records, which the playground reads with their camelCase names (ASP.NET Core's web defaults).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(NextTokenExplanation))]
[JsonSerializable(typeof(TokenizationExplanation))]
internal sealed partial class ExplainJsonContext : JsonSerializerContext;

/// <summary>The contexts each kind of output is written with, escaped as the server has always written it.</summary>
/// <remarks>
/// Response bodies are escaped as ASP.NET Core escapes JSON results (<see cref="JavaScriptEncoder.UnsafeRelaxedJsonEscaping"/>:
/// <c>&lt;s&gt;</c> and non-ASCII text as they are); server-sent events and error objects with the serializer's default
/// encoder (<c>\u003C</c>, <c>\u0027</c>). Either is valid JSON that decodes to the same text; keeping each as it was keeps
/// the bytes clients have seen.
/// </remarks>
internal static class ServerJson
{
    /// <summary>Response bodies (relaxed escaping).</summary>
    public static ServerJsonContext Body { get; } = new(new JsonSerializerOptions(ServerJsonContext.Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    /// <summary>Server-sent event chunks and error objects (default escaping).</summary>
    public static ServerJsonContext Events => ServerJsonContext.Default;

    /// <summary>The explain records' bodies (camelCase, relaxed escaping).</summary>
    public static ExplainJsonContext Explain { get; } = new(new JsonSerializerOptions(ExplainJsonContext.Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
