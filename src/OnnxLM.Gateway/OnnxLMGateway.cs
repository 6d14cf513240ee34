using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;

namespace OnnxLM.Gateway;

/// <summary>
/// A gateway in front of several OnnxLM server replicas, built on YARP: <see cref="Create"/> is what <c>onnxlm gateway</c> runs.
/// </summary>
/// <remarks>
/// Every path is proxied to one replica, chosen by <see cref="OnnxLMGatewayOptions.Routing"/>; the response names it in
/// <see cref="GatewayHeaders.Backend"/>. Headers pass through (<c>Authorization</c> included: keys and limits stay the
/// replicas'), and server-sent events stream through unbuffered. Replicas are probed on
/// <see cref="OnnxLMGatewayOptions.HealthPath"/>; a request that never reached its replica — the connection was refused,
/// or the replica answered 503 because it is draining — is sent to another (its body, read to route it, is replayed).
/// </remarks>
public static class OnnxLMGateway
{
    /// <summary>A ready gateway listening on <paramref name="urls"/>.</summary>
    /// <param name="urls">Where to listen (<c>;</c>-separated).</param>
    /// <param name="configure">Sets the backends and the routing.</param>
    /// <returns>The application, not yet started; the caller owns it.</returns>
    /// <exception cref="ArgumentException">The options are not valid (<see cref="OnnxLMGatewayOptions.Validate"/>).</exception>
    public static WebApplication Create(string urls, Action<OnnxLMGatewayOptions> configure)
    {
        ArgumentException.ThrowIfNullOrEmpty(urls);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new OnnxLMGatewayOptions();
        configure(options);
        options.Validate();

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "onnxlm-gateway" });
        builder.WebHost.UseSetting(Microsoft.AspNetCore.Hosting.WebHostDefaults.ServerUrlsKey, urls);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning).AddFilter("System", LogLevel.Warning).AddFilter("Yarp", LogLevel.Warning);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<ReplicaLoads>();
        builder.Services.AddSingleton<ILoadBalancingPolicy, CacheAwarePolicy>();
        builder.Services.AddSingleton<IActiveHealthCheckPolicy, ReplicaHealthPolicy>();
        builder.Services.AddSingleton<IPassiveHealthCheckPolicy, ConnectFailurePolicy>();
        builder.Services.AddReverseProxy()
            .LoadFromMemory([Route()], [Cluster(options)])
            .AddTransforms(context => context.AddResponseTransform(transform =>
            {
                // A draining replica's 503: keep it from the client (it is retried elsewhere) unless it is the last try.
                if (transform.ProxyResponse is { StatusCode: System.Net.HttpStatusCode.ServiceUnavailable } response
                    && response.Headers.Contains("x-onnxlm-draining")
                    && transform.HttpContext.Items[AttemptsLeftItem] is int left && left > 0)
                {
                    transform.HttpContext.Items[Retry.DrainingItem] = true;
                    transform.SuppressResponseBody = true;
                }

                return ValueTask.CompletedTask;
            }));

        var app = builder.Build();
        app.MapReverseProxy(proxy =>
        {
            proxy.Use((context, next) => ReadAndKeyAsync(context, next, options));
            proxy.Use((context, next) => RetryAsync(context, next, options));
            proxy.UseLoadBalancing();
            proxy.UsePassiveHealthChecks();
        });
        return app;
    }

    private const string AttemptsLeftItem = "onnxlm.attempts-left";

    private static RouteConfig Route() => new()
    {
        RouteId = "all",
        ClusterId = "replicas",
        Match = new RouteMatch { Path = "{**path}" },
    };

    private static ClusterConfig Cluster(OnnxLMGatewayOptions options) => new()
    {
        ClusterId = "replicas",
        LoadBalancingPolicy = options.Routing == GatewayRouting.RoundRobin ? LoadBalancingPolicies.RoundRobin : CacheAwarePolicy.PolicyName,
        Destinations = options.Backends.Select((b, i) => (b, i)).ToDictionary(x => $"replica-{x.i}", x => new DestinationConfig { Address = x.b.ToString() }),
        HealthCheck = new HealthCheckConfig
        {
            Active = new ActiveHealthCheckConfig
            {
                Enabled = true,
                Interval = options.HealthCheckInterval,
                Timeout = options.HealthCheckTimeout,
                Path = options.HealthPath,
                Policy = ReplicaHealthPolicy.PolicyName,
            },
            Passive = new PassiveHealthCheckConfig { Enabled = true, Policy = ConnectFailurePolicy.PolicyName, ReactivationPeriod = options.ReactivationPeriod },
        },
        HttpRequest = new ForwarderRequestConfig { ActivityTimeout = options.ActivityTimeout, AllowResponseBuffering = false },
    };

    /// <summary>
    /// Reads the body (bounded by <see cref="OnnxLMGatewayOptions.MaxRequestBodyBytes"/>) so that it can key the route and
    /// be replayed on a retry, keys the route, names the conversation, and names the chosen replica in the response.
    /// </summary>
    private static async Task ReadAndKeyAsync(HttpContext context, Func<Task> next, OnnxLMGatewayOptions options)
    {
        var request = context.Request;
        ReadOnlyMemory<byte> body = ReadOnlyMemory<byte>.Empty;
        if (request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0)
        {
            if (request.ContentLength > options.MaxRequestBodyBytes)
            {
                await RefuseAsync(context, 413, $"The request body is larger than {options.MaxRequestBodyBytes} bytes.", "request_too_large");
                return;
            }

            var buffer = new MemoryStream(request.ContentLength is long length ? (int)length : 0);
            try
            {
                // Kestrel stops a body over MaxRequestBodySize (the same limit) with a 413 of its own.
                await request.Body.CopyToAsync(buffer, context.RequestAborted);
            }
            catch (BadHttpRequestException e) when (e.StatusCode == 413)
            {
                await RefuseAsync(context, 413, $"The request body is larger than {options.MaxRequestBodyBytes} bytes.", "request_too_large");
                return;
            }

            body = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
            buffer.Position = 0;
            request.Body = buffer;
            request.ContentLength = buffer.Length;
            request.Headers.TransferEncoding = default;
        }

        var conversationHeader = request.Headers[GatewayHeaders.ConversationId].ToString();
        var (key, conversation) = RoutingKey.Of(request.Path.Value ?? "", conversationHeader, body.Span, options.PromptPrefixLength);
        if (key is not null) context.Items[CacheAwarePolicy.KeyItem] = key;
        if (options.NameConversations && conversation is not null) request.Headers[GatewayHeaders.ConversationId] = conversation;
        context.Response.OnStarting(() =>
        {
            if (context.Features.Get<IReverseProxyFeature>()?.ProxiedDestination is { } destination)
            {
                context.Response.Headers[GatewayHeaders.Backend] = destination.Model.Config.Address.TrimEnd('/');
            }

            return Task.CompletedTask;
        });
        await next();
    }

    /// <summary>Sends a request that never reached its replica to another one, up to <see cref="OnnxLMGatewayOptions.MaxRetries"/> times.</summary>
    private static async Task RetryAsync(HttpContext context, Func<Task> next, OnnxLMGatewayOptions options)
    {
        var proxy = context.Features.Get<IReverseProxyFeature>()!;
        var candidates = proxy.AvailableDestinations;
        var tried = new HashSet<DestinationState>();
        var replayable = context.Request.Body is MemoryStream || context.Request.ContentLength is null or 0;
        for (var attempt = 0; ; attempt++)
        {
            var left = replayable ? options.MaxRetries - attempt : 0;
            context.Items[AttemptsLeftItem] = left;
            await next();
            var destination = proxy.ProxiedDestination;
            if (left <= 0 || context.Response.HasStarted || destination is null || !Retry.NeverReached(context)) return;
            tried.Add(destination);
            var remaining = candidates.Where(d => !tried.Contains(d)).ToList();
            if (remaining.Count == 0) return;

            // Undo the failed attempt: the response YARP began (status, headers), its error, the body read.
            context.Response.Clear();
            context.Features.Set<IForwarderErrorFeature>(null);
            context.Items.Remove(Retry.DrainingItem);
            if (context.Request.Body is MemoryStream replay) replay.Position = 0;
            proxy.AvailableDestinations = remaining;
            proxy.ProxiedDestination = null;
        }
    }

    private static async Task RefuseAsync(HttpContext context, int status, string message, string code)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        var error = JsonSerializer.Serialize(new Dictionary<string, Dictionary<string, string?>>
        {
            ["error"] = new() { ["message"] = message, ["type"] = "invalid_request_error", ["param"] = null, ["code"] = code },
        });
        await context.Response.WriteAsync(error, context.RequestAborted);
    }
}
