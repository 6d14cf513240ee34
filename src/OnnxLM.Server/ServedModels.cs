using Microsoft.Extensions.DependencyInjection;
using OnnxLM.Hosting;

namespace OnnxLM.Server;

/// <summary>The models the server answers for, by request name; never a path from the request.</summary>
internal sealed class ServedModels(IServiceProvider services, OnnxLMServerOptions options)
{
    public IReadOnlyList<string> Names => (IReadOnlyList<string>)options.Models;

    public (string Name, OnnxLMModelHost Host) Resolve(string? requested)
    {
        if (options.Models.Count == 0) throw new ApiException(500, "The server has no models configured.", type: "server_error");
        var name = requested ?? options.Models[0];
        if (!options.Models.Contains(name))
        {
            throw new ApiException(404, $"The model '{name}' does not exist; this server has {string.Join(", ", options.Models)}.", "model", "model_not_found");
        }

        var host = services.GetRequiredKeyedService<OnnxLMModelHost>(name);
        if (!host.IsLoaded && host.Options.LoadEagerly)
        {
            throw new ApiException(503, $"The model '{name}' is still loading.", code: "model_loading", type: "server_error") { RetryAfter = TimeSpan.FromSeconds(2) };
        }

        return (name, host);
    }

    public OnnxLMChatClient ChatClient(string name) => services.GetRequiredKeyedService<OnnxLMChatClient>(name);
}
