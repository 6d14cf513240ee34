using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace OnnxLM.Gateway;

/// <summary>Whether a proxied request never reached its replica, so that it can safely go to another.</summary>
internal static class Retry
{
    /// <summary>The <see cref="HttpContext.Items"/> key set when a replica answered 503 draining (its body suppressed).</summary>
    public const string DrainingItem = "onnxlm.replica-draining";

    public static bool NeverReached(HttpContext context)
    {
        if (context.Items.ContainsKey(DrainingItem)) return true;
        var error = context.Features.Get<IForwarderErrorFeature>();
        if (error is null || error.Error != ForwarderError.Request) return false;
        for (var e = error.Exception; e is not null; e = e.InnerException)
        {
            if (e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError }) return true;
            if (e is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused or System.Net.Sockets.SocketError.HostUnreachable or System.Net.Sockets.SocketError.NetworkUnreachable }) return true;
        }

        return false;
    }
}
