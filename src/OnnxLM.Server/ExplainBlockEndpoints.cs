using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using OnnxLM.Explain;

namespace OnnxLM.Server;

/// <summary>The block views over HTTP, for the playground: <c>/explain/contributions</c>, <c>/explain/dimensions</c>, <c>/explain/cost</c>.</summary>
internal static class ExplainBlockEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ServedModels models, OnnxLMServerOptions options)
    {
        app.MapPost("/explain/contributions", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            var text = body.RequiredString("text");
            if (text.Length > options.MaxExplainTextLength)
            {
                throw ApiException.BadRequest($"'text' has {text.Length} characters; the explain views take at most {options.MaxExplainTextLength} (MaxExplainTextLength).", "text");
            }

            var info = host.Model.Info;
            var head = body.Int("head", 0, info.AttentionHeadCount - 1);
            var layer = body.Int("layer", 0, info.LayerCount - 1);
            var top = body.Int("top", 1, 50) ?? 5;
            using var explain = host.Model.Explain();
            var contributions = await explain.ContributionsAsync(text, http.RequestAborted);
            var chosen = layer ?? Enumerable.Range(0, contributions.MlpNorms.Count).MaxBy(i => contributions.MlpNorms[i][^1]);
            var ablation = await explain.AblateAsync(text, chosen, head, top, http.RequestAborted);
            return Results.Json(new ContributionsResponse(contributions, ablation), BlockJson.Body.ContributionsResponse);
        });
        app.MapPost("/explain/dimensions", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            var epsilon = body.Float("epsilon", 0.001f, 0.999f) ?? 0.1f;
            var pairs = body.Int("pairs", 1, 20000) ?? 2000;
            var seed = body.Int("seed") ?? 0;
            using var explain = host.Model.Explain();
            return Results.Json(explain.Dimensions(pairs, Math.Round(epsilon, 3), seed), BlockJson.Body.DimensionsExplanation);
        });
        app.MapPost("/explain/cost", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            var context = host.Model.Info.ContextLength;
            var max = body.Int("max_length", 3, Math.Min(1024, context - 1)) ?? Math.Min(128, context - 1);
            var repeats = body.Int("repeats", 1, 5) ?? 2;
            // Lengths doubling from 4 up to max_length, at least three of them.
            var lengths = new List<int>();
            for (var n = 4; n < max; n *= 2) lengths.Add(n);
            lengths.Add(max);
            if (lengths.Count < 3) lengths = [1, 2, max];
            using var explain = host.Model.Explain();
            return Results.Json(await explain.CostAsync(lengths.Distinct().ToList(), repeats, http.RequestAborted), BlockJson.Body.CostExplanation);
        });
    }
}

/// <summary>The contributions view with the ablation it ran.</summary>
internal sealed record ContributionsResponse(BlockContributions Contributions, AblationResult Ablation);

/// <summary>The block views' bodies, camelCase like the other explain records the playground reads, relaxed escaping.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(ContributionsResponse))]
[JsonSerializable(typeof(DimensionsExplanation))]
[JsonSerializable(typeof(CostExplanation))]
internal sealed partial class BlockJson : JsonSerializerContext
{
    /// <summary>Response bodies (relaxed escaping, as ASP.NET Core writes JSON results).</summary>
    /// <remarks>Built on first use: the generated <c>Default</c> lives in another part of this class, whose static initializers run in no set order.</remarks>
    public static BlockJson Body => s_body ??= new(new JsonSerializerOptions(Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });

    private static BlockJson? s_body;
}
