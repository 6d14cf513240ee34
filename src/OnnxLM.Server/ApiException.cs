using Microsoft.AspNetCore.Http;
using OnnxLM.Server.Wire;

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

    /// <summary>
    /// The 400 for a value the library refused with an <see cref="ArgumentException"/> (a grammar it cannot parse, a
    /// constraint past its limits), reported against <paramref name="param"/>.
    /// </summary>
    /// <remarks>
    /// The message is the library's own explanation without the <c>(Parameter 'name')</c> that <see cref="ArgumentException.Message"/>
    /// appends: the name is the library's parameter, not the request's field, which <paramref name="param"/> gives instead.
    /// </remarks>
    public static ApiException Refused(ArgumentException e, string? param = null)
    {
        ArgumentNullException.ThrowIfNull(e);
        var message = e.Message;
        var appended = e.ParamName is null ? null : $" (Parameter '{e.ParamName}')";
        var at = appended is null ? -1 : message.IndexOf(appended, StringComparison.Ordinal);
        return BadRequest(at < 0 ? message : message.Remove(at, appended!.Length), param);
    }

    public async Task WriteAsync(HttpContext context)
    {
        if (context.Response.HasStarted) return; // mid-stream: the connection just ends
        context.Response.StatusCode = Status;
        if (RetryAfter is { } retry) context.Response.Headers.RetryAfter = ((int)Math.Ceiling(retry.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsJsonAsync(new ErrorResponse(new ErrorBody(Message, Type, Param, Code)), ServerJson.Events.ErrorResponse, "application/json", context.RequestAborted);
    }
}
