using System.Globalization;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace OnnxLM.Gateway;

/// <summary>
/// YARP's active health check policy for the replicas: a replica is healthy while its health endpoint answers 2xx (503
/// while it loads or drains), and each probe's load headers update <see cref="ReplicaLoads"/>.
/// </summary>
internal sealed class ReplicaHealthPolicy(IDestinationHealthUpdater updater, ReplicaLoads loads) : IActiveHealthCheckPolicy
{
    public const string PolicyName = "OnnxLM.Replica";

    public string Name => PolicyName;

    public void ProbingCompleted(ClusterState cluster, IReadOnlyList<DestinationProbingResult> probingResults)
    {
        var states = new List<NewActiveDestinationHealth>(probingResults.Count);
        foreach (var result in probingResults)
        {
            var response = result.Response;
            if (response is not null)
            {
                loads.Set(result.Destination.DestinationId, new ReplicaLoad(Header(response, GatewayHeaders.Waiting), Header(response, GatewayHeaders.Running), Header(response, GatewayHeaders.InFlight)));
            }

            states.Add(new NewActiveDestinationHealth(result.Destination, response is { IsSuccessStatusCode: true } ? DestinationHealth.Healthy : DestinationHealth.Unhealthy));
        }

        updater.SetActive(cluster, states);
    }

    private static int Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) && int.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
}

/// <summary>
/// YARP's passive health check policy: a replica that refused a connection (or answered 503 draining) leaves the rotation
/// for <see cref="OnnxLMGatewayOptions.ReactivationPeriod"/> at once, without waiting for the next active probe.
/// </summary>
internal sealed class ConnectFailurePolicy(IDestinationHealthUpdater updater, OnnxLMGatewayOptions options) : IPassiveHealthCheckPolicy
{
    public const string PolicyName = "OnnxLM.ConnectFailure";

    public string Name => PolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        if (Retry.NeverReached(context)) updater.SetPassive(cluster, destination, DestinationHealth.Unhealthy, options.ReactivationPeriod);
    }
}

/// <summary>Whether a proxied request never reached its replica, so that it can safely go to another.</summary>
internal static class Retry
{
    /// <summary>The <see cref="HttpContext.Items"/> key set when a replica answered 503 draining (its body suppressed).</summary>
    public const string DrainingItem = "onnxlm.replica-draining";

    public static bool NeverReached(HttpContext context)
    {
        if (context.Items.ContainsKey(DrainingItem)) return true;
        var error = context.Features.Get<IForwarderErrorFeature>();
        if (error is null || error.Error != ForwarderError.Request) return false;
        for (var e = error.Exception; e is not null; e = e.InnerException)
        {
            if (e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError }) return true;
            if (e is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused or System.Net.Sockets.SocketError.HostUnreachable or System.Net.Sockets.SocketError.NetworkUnreachable }) return true;
        }

        return false;
    }
}
