using OnnxLM.Server;

// A replica: the server drains on SIGTERM (503 to new requests, /health 503 'draining') and lets requests in flight finish.
var model = Environment.GetEnvironmentVariable("MODEL") ?? SampleModel.Find(args);
var port = Environment.GetEnvironmentVariable("PORT") ?? "8081";
await using var app = OnnxLMServer.Create(model, "kjv-tiny", $"http://127.0.0.1:{port}", o =>
{
    o.DrainDelay = TimeSpan.FromSeconds(2);
    o.DrainTimeout = TimeSpan.FromSeconds(30);
}, o => o.MaxConcurrentSequences = 8);
await app.RunAsync();
