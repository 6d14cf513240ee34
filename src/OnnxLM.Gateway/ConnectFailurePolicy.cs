using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace OnnxLM.Gateway;

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
