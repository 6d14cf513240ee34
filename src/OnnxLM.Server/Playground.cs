using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Http;

namespace OnnxLM.Server;

/// <summary>The playground page: static files embedded in this assembly, using only the server's own endpoints.</summary>
internal static class Playground
{
    /// <summary>The page's files, each with its content type.</summary>
    private static readonly Dictionary<string, string> Files = new(StringComparer.Ordinal)
    {
        ["index.html"] = "text/html; charset=utf-8",
        ["app.js"] = "text/javascript; charset=utf-8",
        ["blocks.js"] = "text/javascript; charset=utf-8",
        ["style.css"] = "text/css; charset=utf-8",
        ["layers.js"] = "text/javascript; charset=utf-8",
        ["favicon.svg"] = "image/svg+xml",
    };

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/", () => File("index.html"));
        app.MapGet("/playground/{file}", (string file) => Files.ContainsKey(file) ? File(file) : Results.NotFound());
        // Browsers ask for /favicon.ico when a page declares no icon (an endpoint's JSON opened in a tab): answer with the page's
        // icon, after any /favicon.ico route of the application that maps these endpoints (a higher order loses to it).
        app.MapGet("/favicon.ico", () => File("favicon.svg")).WithOrder(1);
    }

    private static IResult File(string name)
    {
        var stream = typeof(Playground).Assembly.GetManifestResourceStream("playground/" + name);
        return stream is null ? Results.NotFound() : Results.Stream(stream, Files[name]);
    }
}
