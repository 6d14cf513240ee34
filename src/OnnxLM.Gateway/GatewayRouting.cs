namespace OnnxLM.Gateway;

/// <summary>How the gateway chooses a replica for a request.</summary>
public enum GatewayRouting
{
    /// <summary>Rendezvous hashing of the conversation's stable prefix, with bounded load: a conversation's turns land where its cache is.</summary>
    CacheAware,

    /// <summary>YARP's round robin, ignoring caches (the baseline cache-aware routing is measured against).</summary>
    RoundRobin,
}
