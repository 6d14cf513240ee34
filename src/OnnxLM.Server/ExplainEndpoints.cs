using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Http;
using OnnxLM.Server.Wire;

namespace OnnxLM.Server;

/// <summary>The explain views over HTTP, for the playground: <c>/explain/next</c>, <c>/explain/tokens</c>, <c>/explain/attention</c>, <c>/explain/cache</c>.</summary>
internal static class ExplainEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ServedModels models, OnnxLMServerOptions options)
    {
        // Every explain view's work and response grow with its text: one bound, checked before any tokenizing.
        string Text(RequestBody body, string field)
        {
            var text = body.RequiredString(field);
            if (text.Length > options.MaxExplainTextLength)
            {
                throw ApiException.BadRequest($"'{field}' has {text.Length} characters; the explain views take at most {options.MaxExplainTextLength} (MaxExplainTextLength).", field);
            }

            return text;
        }

        app.MapPost("/explain/next", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            var prompt = Text(body, "prompt");
            using var explain = host.Model.Explain();
            var temperature = body.Float("temperature", 0, 2) ?? 1f;
            var view = await explain.NextTokenAsync(prompt, body.Int("top", 1, 100) ?? 10, [temperature], body.Float("top_p", 0, 1) ?? 0.9f, body.Float("min_p", 0, 1) ?? 0.05f, http.RequestAborted);
            return Results.Json(view, ServerJson.Explain.NextTokenExplanation);
        });
        app.MapPost("/explain/tokens", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            return Results.Json(host.Model.Tokenizer.Explain(Text(body, "text")), ServerJson.Explain.TokenizationExplanation);
        });
        app.MapPost("/explain/attention", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            using var explain = host.Model.Explain();
            var map = await explain.AttentionAsync(Text(body, "text"), http.RequestAborted);
            var layer = body.Int("layer", 0, map.LayerCount - 1) ?? map.LayerCount - 1;
            var head = body.Int("head", 0, map.HeadCount - 1);
            return Results.Json(new AttentionResponse(map.Tokens, map.LayerCount, map.HeadCount, layer, head, head is { } h ? map.Head(layer, h) : map.LayerAverage(layer)), ServerJson.Body.AttentionResponse);
        });
        app.MapGet("/explain/cache", (string? model) =>
        {
            var (_, host) = models.Resolve(model);
            var info = host.Model.Info;
            return Results.Json(new CacheResponse(info.KvCacheBytesPerToken, info.ContextLength, info.LayerCount, info.KeyValueHeadCount, info.HeadSize), ServerJson.Body.CacheResponse);
        });
    }
}
