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
    /// The 400 for an option the library refused (a sampling value out of its range, a grammar it cannot parse, a
    /// constraint past its limits): the library's <see cref="InvalidOptionException.Reason"/>, reported against the request
    /// field <paramref name="param"/> — by default the field the option comes from, when the server knows it.
    /// </summary>
    public static ApiException Refused(InvalidOptionException e, string? param = null)
    {
        ArgumentNullException.ThrowIfNull(e);
        param ??= FieldOf.GetValueOrDefault(e.OptionName);
        return BadRequest(param is null ? e.Reason : $"'{param}': {e.Reason}", param);
    }

    /// <summary>
    /// The request fields of the options only checked once generation starts (ids against the vocabulary, a schema as it
    /// compiles); the fields set before are reported where they are read.
    /// </summary>
    private static readonly Dictionary<string, string> FieldOf = new(StringComparer.Ordinal)
    {
        [nameof(GenerationOptions.LogitBias)] = "logit_bias",
        ["schema"] = "response_format",
    };

    public async Task WriteAsync(HttpContext context)
    {
        if (context.Response.HasStarted) return; // mid-stream: the connection just ends
        context.Response.StatusCode = Status;
        if (RetryAfter is { } retry) context.Response.Headers.RetryAfter = ((int)Math.Ceiling(retry.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsJsonAsync(new ErrorResponse(new ErrorBody(Message, Type, Param, Code)), ServerJson.Events.ErrorResponse, "application/json", context.RequestAborted);
    }
}
