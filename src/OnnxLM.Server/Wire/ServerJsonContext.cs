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
