using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace OnnxLM.Cli;

/// <summary>
/// Sends ONNX Runtime's native log through the tool's logger instead of letting it write coloured lines to the
/// console (CUDA provider load failures, for instance): the process-wide ONNX Runtime environment is created once,
/// before any model, with a logging callback.
/// </summary>
internal static class NativeLog
{
    private static ILogger? _logger;
    private static int _created;

    public static void Route(ILoggerFactory loggerFactory)
    {
        _logger = loggerFactory.CreateLogger("OnnxRuntime");
        if (Interlocked.Exchange(ref _created, 1) != 0) return;
        var options = new EnvironmentCreationOptions
        {
            logId = "onnxlm",
            logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
            loggingFunction = Forward,
        };
        try
        {
            OrtEnv.CreateInstanceWithOptions(ref options);
        }
        catch (OnnxRuntimeException)
        {
            // The environment already exists (created by an earlier model in this process); its log stays as it is.
        }
    }

    private static void Forward(IntPtr param, OrtLoggingLevel severity, string category, string logId, string codeLocation, string message)
    {
        var level = severity switch
        {
            OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE => LogLevel.Trace,
            OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO => LogLevel.Debug,
            OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING => LogLevel.Warning,
            OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR => LogLevel.Error,
            _ => LogLevel.Critical,
        };
        _logger?.Log(level, "{Category}: {Message}", category, message);
    }
}
