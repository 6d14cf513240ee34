using System.Collections.Concurrent;

namespace OnnxLM.Gateway;

/// <summary>The load each replica last reported on its health endpoint (headers of <c>/health</c>), by destination id.</summary>
internal sealed class ReplicaLoads
{
    private readonly ConcurrentDictionary<string, ReplicaLoad> _loads = new(StringComparer.Ordinal);

    public void Set(string destinationId, ReplicaLoad load) => _loads[destinationId] = load;

    public ReplicaLoad Get(string destinationId) => _loads.TryGetValue(destinationId, out var load) ? load : default;
}
