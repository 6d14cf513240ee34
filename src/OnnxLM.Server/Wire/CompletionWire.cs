using System.Text.Json.Serialization;

namespace OnnxLM.Server.Wire;

// What POST /v1/completions answers, field for field as OpenAI's legacy completions write it.

/// <summary>A completion, or one streamed chunk of it (then <see cref="Usage"/> is absent except on the final usage chunk).</summary>
internal sealed record Completion(
    string Id,
    string Object,
    long Created,
    string Model,
    IReadOnlyList<CompletionChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] CompletionUsage? Usage = null);

/// <summary>One choice: its text, with log-probabilities when asked for; <see cref="FinishReason"/> is null mid-stream.</summary>
internal sealed record CompletionChoice(string Text, int Index, CompletionLogProbs? Logprobs, string? FinishReason);

/// <summary>Token counts of a completions request.</summary>
internal sealed record CompletionUsage(int PromptTokens, int CompletionTokens, int TotalTokens, PromptTokensDetails PromptTokensDetails);

/// <summary>OpenAI's completion logprobs object: parallel lists, one entry per token.</summary>
internal sealed class CompletionLogProbs
{
    /// <summary>Each token's text.</summary>
    public List<string> Tokens { get; } = [];

    /// <summary>Each token's log-probability; null for a prompt's first token, which has no context.</summary>
    public List<double?> TokenLogprobs { get; } = [];

    /// <summary>The most likely tokens at each position, by text.</summary>
    public List<Dictionary<string, double>?> TopLogprobs { get; } = [];

    /// <summary>Where each token starts in the returned text.</summary>
    public List<int> TextOffset { get; } = [];
}
