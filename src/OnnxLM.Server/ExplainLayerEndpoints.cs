using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using OnnxLM.Explain;

namespace OnnxLM.Server;

/// <summary>The layer views over HTTP, for the playground: <c>/explain/lens</c>, <c>/explain/heads</c>, <c>/explain/qk</c>.</summary>
internal static class ExplainLayerEndpoints
{
    private static readonly LayerJsonContext Json = new(new JsonSerializerOptions(LayerJsonContext.Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    public static void Map(IEndpointRouteBuilder app, ServedModels models, OnnxLMServerOptions options)
    {
        // The same bound as the other explain views, checked before any tokenizing; the core then refuses more than 512 tokens.
        string Text(RequestBody body)
        {
            var text = body.RequiredString("text");
            return text.Length <= options.MaxExplainTextLength ? text
                : throw ApiException.BadRequest($"'text' has {text.Length} characters; the explain views take at most {options.MaxExplainTextLength} (MaxExplainTextLength).", "text");
        }

        app.MapPost("/explain/lens", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            using var explain = host.Model.Explain();
            var lens = await explain.LensAsync(Text(body), body.Int("top", 1, 20) ?? 5, http.RequestAborted);
            return Results.Json(lens, Json.LogitLens);
        });
        app.MapPost("/explain/heads", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            var layer = body.Int("layer", 0, host.Model.Info.LayerCount - 1) ?? host.Model.Info.LayerCount - 1;
            using var explain = host.Model.Explain();
            var heads = await explain.HeadsAsync(Text(body), http.RequestAborted);
            var map = heads.Attention;
            var weights = Enumerable.Range(0, map.HeadCount).Select(h => map.Head(layer, h)).ToList();
            return Results.Json(new HeadsResponse(map.Tokens, map.LayerCount, layer, [.. heads.Heads.Where(h => h.Layer == layer)], weights), Json.HeadsResponse);
        });
        app.MapPost("/explain/qk", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            var layer = body.Int("layer", 0, host.Model.Info.LayerCount - 1) ?? host.Model.Info.LayerCount - 1;
            using var explain = host.Model.Explain();
            var scores = await explain.QueryKeyAsync(Text(body), layer, body.Int("query", 0, int.MaxValue), http.RequestAborted);
            return Results.Json(scores, Json.QueryKeyScores);
        });
    }
}

/// <summary>One layer's heads: the per-head summaries and the attention matrices [head][query][key].</summary>
internal sealed record HeadsResponse(IReadOnlyList<string> Tokens, int Layers, int Layer, IReadOnlyList<HeadSummary> Heads, IReadOnlyList<float[][]> Weights);

/// <summary>The layer views' bodies, camelCase like the other explain records the playground reads.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(LogitLens))]
[JsonSerializable(typeof(HeadsResponse))]
[JsonSerializable(typeof(QueryKeyScores))]
internal sealed partial class LayerJsonContext : JsonSerializerContext;
