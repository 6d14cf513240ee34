using System.Text.Json.Serialization;

namespace OnnxLM.Server.Wire;

// The other responses: errors, the model list, tokenize, health and the explain views that are not core records.

/// <summary>OpenAI's error object, <c>{"error": {...}}</c>.</summary>
internal sealed record ErrorResponse(ErrorBody Error);

/// <summary>What went wrong: <see cref="Param"/> names the request field when one is at fault.</summary>
internal sealed record ErrorBody(string Message, string Type, string? Param, string? Code);

/// <summary><c>GET /v1/models</c>.</summary>
internal sealed record ModelList(string Object, IReadOnlyList<ModelEntry> Data);

/// <summary>One served model.</summary>
internal sealed record ModelEntry(string Id, string Object, long Created, string OwnedBy);

/// <summary><c>POST /tokenize</c>.</summary>
internal sealed record TokenizeResponse(int[] Tokens, int Count, int MaxModelLen);

/// <summary><c>POST /detokenize</c>.</summary>
internal sealed record DetokenizeResponse(string Prompt);

/// <summary>
/// <c>GET /health</c>: <c>ok</c> with the models, <c>loading</c> with those still loading, or <c>draining</c> while the
/// server shuts down; with the load a router reads (requests waiting in the queues and running as batch rows, summed over the models).
/// </summary>
internal sealed record HealthResponse(
    string Status,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Models = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Loading = null,
    int Waiting = 0,
    int Running = 0,
    int InFlight = 0);

/// <summary><c>POST /explain/attention</c>: one layer's weights, of one head or averaged over heads (then <see cref="Head"/> is null).</summary>
internal sealed record AttentionResponse(IReadOnlyList<string> Tokens, int Layers, int Heads, int Layer, int? Head, float[][] Weights);

/// <summary><c>GET /explain/cache</c>: the KV cache's size.</summary>
internal sealed record CacheResponse(long BytesPerToken, int ContextLength, int Layers, int KvHeads, int HeadSize);
