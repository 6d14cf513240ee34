using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace OnnxLM.Gateway;

/// <summary>
/// YARP's load-balancing policy for <see cref="GatewayRouting.CacheAware"/>: rendezvous (highest random weight) hashing
/// of the request's <see cref="RoutingKey"/> over the available replicas — a conversation stays on one replica, and
/// when a replica leaves only its own conversations move — with bounded load: when the owner's load reaches
/// <see cref="OnnxLMGatewayOptions.SpillThreshold"/>, the next replica in the key's order below it takes the request
/// (the same one for every request of that conversation while the owner stays full), else the least-loaded.
/// </summary>
internal sealed class CacheAwarePolicy(ReplicaLoads loads, OnnxLMGatewayOptions options) : ILoadBalancingPolicy
{
    public const string PolicyName = "OnnxLM.CacheAware";

    /// <summary>The <see cref="HttpContext.Items"/> key of the request's route key.</summary>
    public const string KeyItem = "onnxlm.route-key";

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        if (availableDestinations.Count == 0) return null;
        if (availableDestinations.Count == 1) return availableDestinations[0];
        if (context.Items[KeyItem] is not string key) return LeastLoaded(availableDestinations);
        var keyHash = Hashing.Hash64(key);
        foreach (var destination in Order(keyHash, availableDestinations))
        {
            if (Load(destination) < options.SpillThreshold) return destination;
        }

        return LeastLoaded(availableDestinations);
    }

    /// <summary>The destinations by descending rendezvous weight for the key.</summary>
    internal static IEnumerable<DestinationState> Order(ulong keyHash, IReadOnlyList<DestinationState> destinations) =>
        destinations.OrderByDescending(d => Hashing.Mix(keyHash ^ Hashing.Hash64(d.DestinationId))).ThenBy(d => d.DestinationId, StringComparer.Ordinal);

    /// <summary>A replica's load: requests this gateway has in flight to it, or what it last reported, whichever is higher.</summary>
    private int Load(DestinationState destination)
    {
        var reported = loads.Get(destination.DestinationId);
        return Math.Max(destination.ConcurrentRequestCount, Math.Max(reported.InFlight, reported.Running + reported.Waiting));
    }

    private DestinationState LeastLoaded(IReadOnlyList<DestinationState> destinations)
    {
        var best = destinations[0];
        for (var i = 1; i < destinations.Count; i++)
        {
            if (Load(destinations[i]) < Load(best)) best = destinations[i];
        }

        return best;
    }
}
