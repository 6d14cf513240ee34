using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OnnxLM.Hosting;
using OpenTelemetry.Metrics;

namespace OnnxLM.Server;

/// <summary>
/// The OpenAI-compatible server: <see cref="AddOnnxLMServer"/> registers it, <see cref="MapOnnxLMServer"/> maps
/// <c>/v1/models</c>, <c>/v1/completions</c>, <c>/v1/chat/completions</c>, <c>/tokenize</c>, <c>/detokenize</c>, the
/// explain endpoints, <c>/health</c>, <c>/metrics</c> and the playground at <c>/</c>.
/// </summary>
public static class OnnxLMServer
{
    /// <summary>A ready server for one model folder (what <c>onnxlm serve</c> runs): the model under <paramref name="name"/>, listening on <paramref name="urls"/>.</summary>
    public static WebApplication Create(string modelFolder, string name, string urls = "http://127.0.0.1:8080", Action<OnnxLMServerOptions>? configure = null,
        Action<OnnxLMOptions>? configureModel = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "onnxlm-serve" });
        builder.WebHost.UseSetting(Microsoft.AspNetCore.Hosting.WebHostDefaults.ServerUrlsKey, urls);
        builder.Services.AddKeyedOnnxLM(name, o =>
        {
            o.ModelPath = modelFolder;
            o.ModelId = name;
            configureModel?.Invoke(o);
        });
        builder.Services.AddOnnxLMServer(o =>
        {
            o.Models.Add(name);
            configure?.Invoke(o);
        });
        var app = builder.Build();
        app.MapOnnxLMServer();
        return app;
    }

    /// <summary>Registers the server (models must be registered with <c>AddKeyedOnnxLM</c> under the names in <see cref="OnnxLMServerOptions.Models"/>).</summary>
    public static IServiceCollection AddOnnxLMServer(this IServiceCollection services, Action<OnnxLMServerOptions> configure)
    {
        var options = new OnnxLMServerOptions();
        configure(options);
        services.AddSingleton(options);
        services.AddSingleton(sp => new ServedModels(sp, options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxRequestBodyBytes, 1, nameof(options.MaxRequestBodyBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxOutputTokens, 1, nameof(options.MaxOutputTokens));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxChoices, 1, nameof(options.MaxChoices));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MinRequestBodyBytesPerSecond, nameof(options.MinRequestBodyBytesPerSecond));
        if (options.MinRequestBodyGracePeriod <= TimeSpan.FromSeconds(1))
        {
            throw new ArgumentOutOfRangeException(nameof(options.MinRequestBodyGracePeriod), options.MinRequestBodyGracePeriod, "MinRequestBodyGracePeriod must be longer than 1 second (Kestrel's minimum).");
        }

        services.Configure<KestrelServerOptions>(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.Limits.MinRequestBodyDataRate = new MinDataRate(options.MinRequestBodyBytesPerSecond, options.MinRequestBodyGracePeriod);
            k.Limits.RequestHeadersTimeout = options.RequestHeadersTimeout;
        });
        services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(OnnxLMTelemetry.Name).AddPrometheusExporter());
        return services;
    }

    /// <summary>Maps the endpoints, the error handling (OpenAI error objects) and the API-key check.</summary>
    public static WebApplication MapOnnxLMServer(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<OnnxLMServerOptions>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("OnnxLM.Server");
        app.Use(async (context, next) =>
        {
            try
            {
                var path = context.Request.Path;
                var open = path == "/health" || path == "/metrics" || !path.StartsWithSegments("/v1") && !path.StartsWithSegments("/tokenize") && !path.StartsWithSegments("/detokenize") && !path.StartsWithSegments("/explain");
                if (options.ApiKeys.Count > 0 && !open && (BearerToken(context.Request) is not { } key || !options.ApiKeys.Contains(key)))
                {
                    throw new ApiException(401, "A valid API key is required (Authorization: Bearer <key>).", code: "invalid_api_key", type: "authentication_error");
                }

                // Only JSON bodies: a form or text/plain POST is a "simple" cross-site request that a web page can make from a
                // visitor's browser without a CORS preflight; a JSON content type forces the preflight, which this server never grants.
                if (HttpMethods.IsPost(context.Request.Method) && !context.Request.HasJsonContentType())
                {
                    throw new ApiException(415, $"The request body must be JSON with 'Content-Type: application/json'; got {(string.IsNullOrEmpty(context.Request.ContentType) ? "no Content-Type" : $"'{context.Request.ContentType}'")}.",
                        code: "unsupported_media_type");
                }

                await next(context);
                // Routing answers an unknown path or method with a bare status; give it the same error object as everything else.
                if (!context.Response.HasStarted && context.Response.StatusCode is 404 or 405 && context.Response.ContentType is null)
                {
                    var missing = context.Response.StatusCode == 404
                        ? new ApiException(404, $"There is no endpoint at {context.Request.Path}.", code: "not_found")
                        : new ApiException(405, $"{context.Request.Path} does not take {context.Request.Method}.", code: "method_not_allowed");
                    await missing.WriteAsync(context);
                }
            }
            catch (ApiException e)
            {
                await e.WriteAsync(context);
            }
            catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (e.StatusCode == 413)
            {
                await new ApiException(413, $"The request body is larger than {options.MaxRequestBodyBytes} bytes.", code: "request_too_large").WriteAsync(context);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client went away; the generation has stopped with it.
            }
            catch (Exception e) when (e is ContextLengthExceededException)
            {
                var param = context.Request.Path.StartsWithSegments("/v1/chat") ? "messages" : context.Request.Path.StartsWithSegments("/v1/completions") ? "prompt" : "text";
                await new ApiException(400, e.Message, param, "context_length_exceeded").WriteAsync(context);
            }
            catch (Exception e) when (e is OnnxLMException or ArgumentException or NotSupportedException or JsonException)
            {
                await ApiException.BadRequest(e.Message).WriteAsync(context);
            }
            catch (Exception e)
            {
                // The last resort: a bug, not bad input. Logged with its stack; the client gets an error object, never an empty 500.
                logger.LogError(e, "Unhandled error serving {Method} {Path}", context.Request.Method, context.Request.Path);
                await new ApiException(500, "The server failed to handle the request; the error is in the server's log.", code: "internal_error", type: "server_error").WriteAsync(context);
            }
        });

        var models = app.Services.GetRequiredService<ServedModels>();
        app.MapGet("/v1/models", () => Results.Json(new
        {
            @object = "list",
            data = models.Names.Select(n => new { id = n, @object = "model", created = 0, owned_by = "onnxlm" }),
        }));
        app.MapPost("/v1/completions", (HttpContext http) => CompletionsEndpoint.HandleAsync(http, models, options));
        app.MapPost("/v1/chat/completions", (HttpContext http) => ChatCompletionsEndpoint.HandleAsync(http, models, options));
        app.MapPost("/tokenize", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            var text = body.String("prompt") ?? body.RequiredString("text");
            host.Model.CheckTextFits(text.Length, "text");
            var ids = body.Bool("add_special_tokens", true) ? host.Model.Tokenizer.Encode(text, cancellationToken: http.RequestAborted) : host.Model.Tokenizer.Encode(text, addSpecialTokens: false, http.RequestAborted);
            return Results.Json(new { tokens = ids, count = ids.Length, max_model_len = host.Model.Info.ContextLength });
        });
        app.MapPost("/detokenize", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            var vocab = host.Model.Tokenizer.VocabularySize;
            var list = body.List("tokens") ?? throw ApiException.BadRequest("'tokens' is required: a list of token ids.", "tokens");
            var ids = list.EnumerateArray().Select((x, i) => RequestBody.Integer(x, $"tokens[{i}]", 0, vocab - 1)).ToArray();
            return Results.Json(new { prompt = host.Model.Tokenizer.Decode(ids) });
        });
        ExplainEndpoints.Map(app, models, options);
        app.MapGet("/health", (IServiceProvider sp) =>
        {
            var loading = models.Names.Where(n => !sp.GetRequiredKeyedService<OnnxLMModelHost>(n).IsLoaded).ToList();
            return loading.Count == 0 ? Results.Json(new { status = "ok", models = models.Names })
                : Results.Json(new { status = "loading", loading }, statusCode: 503);
        });
        app.MapPrometheusScrapingEndpoint("/metrics");
        if (options.Playground) Playground.Map(app);
        return app;
    }

    /// <summary>The token of an <c>Authorization: Bearer</c> header; the scheme name is case-insensitive (RFC 7235).</summary>
    private static string? BearerToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        return header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? header[Scheme.Length..].Trim() : null;
    }
}
