using System.Globalization;
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
