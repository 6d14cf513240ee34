using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OnnxLM.Hosting;
using OnnxLM.Server.Wire;

namespace OnnxLM.Server;

/// <summary>
/// The OpenAI-compatible endpoints: <see cref="Create"/> is the whole server <c>onnxlm serve</c> runs; an ASP.NET Core
/// application hosts the same endpoints itself with <see cref="AddOnnxLMOpenAI"/> and <see cref="MapOnnxLMOpenAI"/>.
/// </summary>
/// <remarks>
/// The endpoints are <c>/v1/models</c>, <c>/v1/completions</c>, <c>/v1/chat/completions</c>, <c>/tokenize</c>,
/// <c>/detokenize</c>, the explain views under <c>/explain</c>, <c>/health</c>, <c>/metrics</c> (Prometheus text, see
/// <see cref="OnnxLMServerOptions.Metrics"/>) and the playground at <c>/</c> (see <see cref="OnnxLMServerOptions.Playground"/>).
/// Errors are OpenAI error objects; with <see cref="OnnxLMServerOptions.ApiKeys"/> the API endpoints need a bearer key.
/// <code>
/// builder.Services.AddKeyedOnnxLM("kjv-tiny", o => o.ModelPath = "models/kjv-tiny");
/// builder.Services.AddOnnxLMOpenAI(o => o.Models.Add("kjv-tiny"));
/// var app = builder.Build();
/// app.MapOnnxLMOpenAI();
/// </code>
/// </remarks>
public static class OnnxLMServer
{
    /// <summary>A ready server for one model folder (what <c>onnxlm serve</c> runs): the model under <paramref name="name"/>, listening on <paramref name="urls"/>.</summary>
    /// <param name="modelFolder">The model folder.</param>
    /// <param name="name">The name requests use in <c>model</c>.</param>
    /// <param name="urls">Where to listen.</param>
    /// <param name="configure">Server settings; the model is already in <see cref="OnnxLMServerOptions.Models"/>.</param>
    /// <param name="configureModel">Model settings; path and id are already set.</param>
    /// <returns>The application, not yet started; the caller owns it.</returns>
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
        var frameworkLevel = LogLevel.Warning;
        builder.Services.AddOnnxLMOpenAI(o =>
        {
            o.Models.Add(name);
            configure?.Invoke(o);
            frameworkLevel = o.FrameworkLogLevel;
        });
        // ASP.NET Core logs several lines per request at Information; the server's own summary line is enough by default.
        builder.Logging.AddFilter("Microsoft", frameworkLevel).AddFilter("System", frameworkLevel);
        // The server is ours alone, so its limits are Kestrel's for every connection (the headers timeout can only be set here).
        // Draining: the host lets requests in flight finish for DrainTimeout; DrainOnStop (registered after the web server, so
        // stopped before it) marks the server draining first and holds the listener open for DrainDelay.
        builder.Services.AddOptions<Microsoft.Extensions.Hosting.HostOptions>().Configure<OnnxLMServerOptions>((h, options) => h.ShutdownTimeout = options.DrainDelay + options.DrainTimeout);
        builder.Services.AddHostedService<DrainOnStop>();
        builder.Services.AddOptions<KestrelServerOptions>().Configure<OnnxLMServerOptions>((k, options) =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.Limits.MinRequestBodyDataRate = new MinDataRate(options.MinRequestBodyBytesPerSecond, options.MinRequestBodyGracePeriod);
            k.Limits.RequestHeadersTimeout = options.RequestHeadersTimeout;
        });
        var app = builder.Build();
        Map(app, wholeApplication: true);
        return app;
    }

    /// <summary>
    /// Registers the OpenAI-compatible endpoints' services; the models must be registered with <c>AddKeyedOnnxLM</c> under
    /// the names in <see cref="OnnxLMServerOptions.Models"/>.
    /// </summary>
    /// <param name="services">The application's services.</param>
    /// <param name="configure">Sets the served models and the server's limits.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddOnnxLMOpenAI(this IServiceCollection services, Action<OnnxLMServerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new OnnxLMServerOptions();
        configure(options);
        services.AddSingleton(options);
        services.AddSingleton(sp => new ServedModels(sp, options));
        services.AddSingleton<ServerDrain>();
        services.AddMetrics();
        services.AddSingleton(sp => new PrometheusMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        return services;
    }

    /// <summary>
    /// Maps the OpenAI-compatible endpoints, with their error handling (OpenAI error objects), API-key check and request
    /// limits, which apply to these endpoints only.
    /// </summary>
    /// <param name="app">The application, whose services include <see cref="AddOnnxLMOpenAI"/>.</param>
    /// <returns>The endpoints, to add conventions to (authorization, CORS, rate limiting).</returns>
    /// <exception cref="InvalidOperationException"><see cref="AddOnnxLMOpenAI"/> was not called.</exception>
    public static IEndpointConventionBuilder MapOnnxLMOpenAI(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return Map(app, wholeApplication: false);
    }

    /// <summary>The endpoints and their middleware: for every request of a server of our own, else for the endpoints' paths only.</summary>
    private static RouteGroupBuilder Map(WebApplication app, bool wholeApplication)
    {
        var options = app.Services.GetService<OnnxLMServerOptions>()
            ?? throw new InvalidOperationException("Call services.AddOnnxLMOpenAI(...) before app.MapOnnxLMOpenAI().");
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("OnnxLM.Server");
        var drain = app.Services.GetRequiredService<ServerDrain>();
        // An application that maps the endpoints itself drains from the moment its host begins to stop.
        app.Lifetime.ApplicationStopping.Register(drain.Begin);
        app.UseWhen(context => wholeApplication || IsServed(context.Request.Path, options), branch => branch.Use(async (context, next) =>
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                LimitBody(context, options);
                var path = context.Request.Path;
                var open = path == "/health" || path == "/metrics" || !path.StartsWithSegments("/v1") && !path.StartsWithSegments("/tokenize") && !path.StartsWithSegments("/detokenize") && !path.StartsWithSegments("/explain");
                if (drain.Draining && !open)
                {
                    // Marks the 503 as "never started": a gateway may send the request to another replica.
                    context.Response.Headers["x-onnxlm-draining"] = "1";
                    throw new ApiException(503, "The server is shutting down and admits no new requests; send the request to another replica or retry later.",
                        code: "server_draining", type: "server_error") { RetryAfter = TimeSpan.FromSeconds(1) };
                }

                using var admission = open ? default : drain.Enter();
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
            catch (InvalidOptionException e)
            {
                await ApiException.Refused(e).WriteAsync(context);
            }
            catch (ArgumentException e)
            {
                await ApiException.BadRequest(e.Message).WriteAsync(context);
            }
            catch (Exception e) when (e is OnnxLMException or NotSupportedException or JsonException)
            {
                await ApiException.BadRequest(e.Message).WriteAsync(context);
            }
            catch (Exception e)
            {
                // The last resort: a bug, not bad input. Logged with its stack; the client gets an error object, never an empty 500.
                logger.LogError(e, "Unhandled error serving {Method} {Path}", context.Request.Method, context.Request.Path);
                await new ApiException(500, "The server failed to handle the request; the error is in the server's log.", code: "internal_error", type: "server_error").WriteAsync(context);
            }
            finally
            {
                // One line per request, without its body or query (prompts stay out of the logs).
                logger.LogInformation("{Method} {Path} {StatusCode} in {Milliseconds:F1} ms", context.Request.Method, context.Request.Path.Value,
                    context.Response.StatusCode, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }));

        var models = app.Services.GetRequiredService<ServedModels>();
        var metrics = app.Services.GetRequiredService<PrometheusMetrics>(); // listening from now on
        var endpoints = app.MapGroup("");
        endpoints.MapGet("/v1/models", () => Results.Json(new ModelList("list", [.. models.Names.Select(n => new ModelEntry(n, "model", 0, "onnxlm"))]), ServerJson.Body.ModelList));
        endpoints.MapPost("/v1/completions", (HttpContext http) => CompletionsEndpoint.HandleAsync(http, models, options));
        endpoints.MapPost("/v1/chat/completions", (HttpContext http) => ChatCompletionsEndpoint.HandleAsync(http, models, options));
        endpoints.MapPost("/tokenize", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            var text = body.String("prompt") ?? body.RequiredString("text");
            host.Model.ThrowIfTextTooLong(text);
            var ids = body.Bool("add_special_tokens", true) ? host.Model.Tokenizer.Encode(text, cancellationToken: http.RequestAborted) : host.Model.Tokenizer.Encode(text, addSpecialTokens: false, http.RequestAborted);
            return Results.Json(new TokenizeResponse(ids, ids.Length, host.Model.Info.ContextLength), ServerJson.Body.TokenizeResponse);
        });
        endpoints.MapPost("/detokenize", async (HttpContext http) =>
        {
            var body = await RequestBody.ReadAsync(http.Request, http.RequestAborted);
            var (_, host) = models.Resolve(body.String("model"));
            var vocab = host.Model.Tokenizer.VocabularySize;
            var list = body.List("tokens") ?? throw ApiException.BadRequest("'tokens' is required: a list of token ids.", "tokens");
            var ids = list.EnumerateArray().Select((x, i) => RequestBody.Integer(x, $"tokens[{i}]", 0, vocab - 1)).ToArray();
            return Results.Json(new DetokenizeResponse(host.Model.Tokenizer.Decode(ids)), ServerJson.Body.DetokenizeResponse);
        });
        ExplainEndpoints.Map(endpoints, models, options);
        ExplainLayerEndpoints.Map(endpoints, models, options);
        ExplainBlockEndpoints.Map(endpoints, models, options);
        endpoints.MapGet("/health", (HttpContext http, IServiceProvider sp) =>
        {
            var hosts = models.Names.Select(n => sp.GetRequiredKeyedService<OnnxLMModelHost>(n)).ToList();
            var loading = models.Names.Where((_, i) => !hosts[i].IsLoaded).ToList();
            int waiting = hosts.Sum(h => h.WaitingRequests), running = hosts.Sum(h => h.RunningRequests);
            // The load also as headers, for probes that read only the status line and headers (a gateway's health checks).
            http.Response.Headers[LoadHeaders.Waiting] = waiting.ToString(System.Globalization.CultureInfo.InvariantCulture);
            http.Response.Headers[LoadHeaders.Running] = running.ToString(System.Globalization.CultureInfo.InvariantCulture);
            http.Response.Headers[LoadHeaders.InFlight] = drain.InFlight.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return drain.Draining ? Results.Json(new HealthResponse("draining", Models: models.Names, Waiting: waiting, Running: running, InFlight: drain.InFlight), ServerJson.Body.HealthResponse, statusCode: 503)
                : loading.Count == 0 ? Results.Json(new HealthResponse("ok", Models: models.Names, Waiting: waiting, Running: running, InFlight: drain.InFlight), ServerJson.Body.HealthResponse)
                : Results.Json(new HealthResponse("loading", Loading: loading, Waiting: waiting, Running: running, InFlight: drain.InFlight), ServerJson.Body.HealthResponse, statusCode: 503);
        });
        if (options.Metrics) endpoints.MapGet("/metrics", () => Results.Text(metrics.Scrape(), PrometheusMetrics.ContentType));
        if (options.Playground) Playground.Map(endpoints);
        return endpoints;
    }

    /// <summary>Whether a path is one of the endpoints', which get the middleware when the application is not ours alone.</summary>
    private static bool IsServed(PathString path, OnnxLMServerOptions options) =>
        path.StartsWithSegments("/v1") || path.StartsWithSegments("/tokenize") || path.StartsWithSegments("/detokenize") || path.StartsWithSegments("/explain")
        || path == "/health" || options.Metrics && path == "/metrics" || options.Playground && (path == "/" || path.StartsWithSegments("/playground"));

    /// <summary>The body limits of <see cref="OnnxLMServerOptions"/> for this request (Kestrel's own for a server of ours; these for an application's).</summary>
    private static void LimitBody(HttpContext context, OnnxLMServerOptions options)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = options.MaxRequestBodyBytes;
        // HTTP/2 and HTTP/3 streams do not take a per-request data rate (Kestrel throws); their connection's limits apply.
        if (HttpProtocol.IsHttp11(context.Request.Protocol) && context.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate)
        {
            rate.MinDataRate = new MinDataRate(options.MinRequestBodyBytesPerSecond, options.MinRequestBodyGracePeriod);
        }
    }

    /// <summary>The token of an <c>Authorization: Bearer</c> header; the scheme name is case-insensitive (RFC 7235).</summary>
    private static string? BearerToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        return header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? header[Scheme.Length..].Trim() : null;
    }
}
