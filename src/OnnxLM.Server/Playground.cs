using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Http;

namespace OnnxLM.Server;

/// <summary>The playground page: static files embedded in this assembly, using only the server's own endpoints.</summary>
internal static class Playground
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/", () => File("index.html", "text/html; charset=utf-8"));
        app.MapGet("/playground/{file}", (string file) => file is "app.js" or "style.css" or "index.html"
            ? File(file, file.EndsWith(".js", StringComparison.Ordinal) ? "text/javascript; charset=utf-8" : file.EndsWith(".css", StringComparison.Ordinal) ? "text/css; charset=utf-8" : "text/html; charset=utf-8")
            : Results.NotFound());
    }

    private static IResult File(string name, string type)
    {
        var stream = typeof(Playground).Assembly.GetManifestResourceStream("playground/" + name);
        return stream is null ? Results.NotFound() : Results.Stream(stream, type);
    }
}
