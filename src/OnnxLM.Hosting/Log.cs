using Microsoft.Extensions.Logging;

namespace OnnxLM.Hosting;

/// <summary>The hosting layer's log events. Text of prompts and replies appears only in <see cref="Content"/>, when <see cref="OnnxLMOptions.LogContent"/> is on.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Loading model {ModelId} from {ModelPath} (provider {Provider})")]
    public static partial void Loading(ILogger logger, string modelId, string modelPath, ExecutionProvider provider);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Loaded model {ModelId} in {ElapsedMs:F0} ms, running on {Provider}: {Info}")]
    public static partial void Loaded(ILogger logger, string modelId, double elapsedMs, ExecutionProvider provider, ModelInfo info);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Loading model {ModelId} from {ModelPath} failed")]
    public static partial void LoadFailed(ILogger logger, Exception exception, string modelId, string modelPath);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Warmed up model {ModelId} in {ElapsedMs:F0} ms")]
    public static partial void WarmedUp(ILogger logger, string modelId, double elapsedMs);

    [LoggerMessage(EventId = 10, Level = LogLevel.Debug, Message = "Request {RequestId} started: {PromptTokens} prompt tokens, {ReusedTokens} reused from a cached conversation, waited {WaitMs:F1} ms")]
    public static partial void RequestStarted(ILogger logger, string requestId, int promptTokens, int reusedTokens, double waitMs);

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Request {RequestId} finished ({FinishReason}): {PromptTokens} prompt + {OutputTokens} output tokens in {ElapsedMs:F0} ms, first token after {FirstTokenMs:F0} ms")]
    public static partial void RequestFinished(ILogger logger, string requestId, string finishReason, int promptTokens, int outputTokens, double elapsedMs, double firstTokenMs);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "Request {RequestId} did not complete ({Reason}) after {ElapsedMs:F0} ms")]
    public static partial void RequestFailed(ILogger logger, string requestId, string reason, double elapsedMs);

    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "Request refused: {Waiting} requests already waiting for model {ModelId}")]
    public static partial void QueueFull(ILogger logger, int waiting, string modelId);

    [LoggerMessage(EventId = 14, Level = LogLevel.Debug, Message = "Request {RequestId} {Kind}: {Text}")]
    public static partial void Content(ILogger logger, string requestId, string kind, string text);
}
