using System.Globalization;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace OnnxLM.Gateway;

/// <summary>
/// YARP's active health check policy for the replicas: a replica is healthy while its health endpoint answers 2xx; an
/// answer of another status (503 while it loads or drains) makes it unhealthy at once, a probe that got no answer (a
/// timeout on a loaded machine) only on the second in a row, so that one slow probe does not move its conversations.
/// Each probe's load headers update <see cref="ReplicaLoads"/>.
/// </summary>
internal sealed class ReplicaHealthPolicy(IDestinationHealthUpdater updater, ReplicaLoads loads) : IActiveHealthCheckPolicy
{
    public const string PolicyName = "OnnxLM.Replica";

    public string Name => PolicyName;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _unanswered = new(StringComparer.Ordinal);

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

            var id = result.Destination.DestinationId;
            var unanswered = response is null ? _unanswered.AddOrUpdate(id, 1, (_, n) => n + 1) : _unanswered[id] = 0;
            var health = response is { IsSuccessStatusCode: true } ? DestinationHealth.Healthy
                : response is not null || unanswered >= 2 ? DestinationHealth.Unhealthy
                : result.Destination.Health.Active;
            states.Add(new NewActiveDestinationHealth(result.Destination, health));
        }

        updater.SetActive(cluster, states);
    }

    private static int Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) && int.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
}
