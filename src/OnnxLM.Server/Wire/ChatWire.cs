using System.Text.Json.Serialization;

namespace OnnxLM.Server.Wire;

// What POST /v1/chat/completions answers, field for field as OpenAI's chat completions write it.

/// <summary>A chat completion (<c>chat.completion</c>).</summary>
internal sealed record ChatCompletion(string Id, string Object, long Created, string Model, IReadOnlyList<ChatChoice> Choices, ChatUsage Usage);

/// <summary>The one choice of a chat completion.</summary>
internal sealed record ChatChoice(int Index, ChatReply Message, ChatLogProbs? Logprobs, string FinishReason);

/// <summary>The assistant's message: <see cref="Content"/> is null when it only calls tools.</summary>
internal sealed record ChatReply(string Role, string? Content, IReadOnlyList<ToolCall>? ToolCalls);

/// <summary>A tool call; <see cref="Index"/> is written only in a stream, where calls arrive one by one.</summary>
internal sealed record ToolCall(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Index,
    string Id,
    string Type,
    FunctionCall Function);

/// <summary>The function a tool call names, with its arguments as a string holding a JSON object.</summary>
internal sealed record FunctionCall(string Name, string Arguments);

/// <summary>The log-probabilities of a chat reply's tokens.</summary>
internal sealed record ChatLogProbs(IReadOnlyList<TokenLogProb> Content);

/// <summary>One output token: its text, log-probability, UTF-8 bytes and the most likely alternatives.</summary>
internal sealed record TokenLogProb(string Token, double Logprob, IReadOnlyList<int> Bytes, IReadOnlyList<TopLogProb> TopLogprobs);

/// <summary>One alternative of a token.</summary>
internal sealed record TopLogProb(string Token, double Logprob, IReadOnlyList<int> Bytes);

/// <summary>Token counts of a chat request.</summary>
internal sealed record ChatUsage(long PromptTokens, long CompletionTokens, long TotalTokens, PromptTokensDetails PromptTokensDetails);

/// <summary>How many prompt tokens came from a cached conversation.</summary>
internal sealed record PromptTokensDetails(long CachedTokens);

/// <summary>One streamed chunk (<c>chat.completion.chunk</c>); the last may carry only <see cref="Usage"/>.</summary>
internal sealed record ChatChunk(
    string Id,
    string Object,
    long Created,
    string Model,
    IReadOnlyList<ChatChunkChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ChatUsage? Usage = null);

/// <summary>The choice of a chunk: what changed, the token's log-probabilities when asked for, the finish reason at the end.</summary>
internal sealed record ChatChunkChoice(
    int Index,
    ChatDelta Delta,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ChatLogProbs? Logprobs,
    string? FinishReason);

/// <summary>What a chunk adds to the message; absent parts are not written (<c>{}</c> at the end).</summary>
internal sealed record ChatDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ToolCall>? ToolCalls = null);
