using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace OnnxLM.Server;

/// <summary>A request the server refuses, written as an OpenAI error object with its HTTP status.</summary>
internal sealed class ApiException(int status, string message, string? param = null, string? code = null, string type = "invalid_request_error") : Exception(message)
{
    public int Status { get; } = status;

    public string? Param { get; } = param;

    public string? Code { get; } = code;

    public string Type { get; } = type;

    public TimeSpan? RetryAfter { get; init; }

    public static ApiException BadRequest(string message, string? param = null) => new(400, message, param);

    public async Task WriteAsync(HttpContext context)
    {
        if (context.Response.HasStarted) return; // mid-stream: the connection just ends
        context.Response.StatusCode = Status;
        if (RetryAfter is { } retry) context.Response.Headers.RetryAfter = ((int)Math.Ceiling(retry.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(JsonSerializer.Serialize(new { error = new { message = Message, type = Type, param = Param, code = Code } }), context.RequestAborted);
    }
}
