// samples/Cluster: N replicas of onnxlm's server, the cache-aware gateway in front of them, and a client that talks to
// the gateway through IChatClient. Aspire starts them, gives each an HTTP endpoint, and passes the addresses on as
// configuration (service discovery: services__replica0__http__0=http://localhost:port, ...).
var builder = DistributedApplication.CreateBuilder(args);
var replicaCount = int.TryParse(builder.Configuration["Replicas"], out var n) && n > 0 ? n : 3;
var model = SampleModel.Find([]);

// The gateway answers /health from a replica: healthy once one is.
var gateway = builder.AddProject<Projects.Gateway>("gateway").WithHttpEndpoint(env: "PORT").WithHttpHealthCheck("/health");
for (var i = 0; i < replicaCount; i++)
{
    var replica = builder.AddProject<Projects.Replica>($"replica{i}")
        .WithHttpEndpoint(env: "PORT")
        .WithEnvironment("MODEL", model)
        .WithHttpHealthCheck("/health");
    gateway.WithReference(replica).WaitFor(replica);
}

builder.AddProject<Projects.Client>("client").WithReference(gateway).WaitFor(gateway);
builder.Build().Run();
