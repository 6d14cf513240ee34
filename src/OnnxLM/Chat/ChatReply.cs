namespace OnnxLM.Chat;

/// <summary>One assistant turn of a <see cref="ChatSession"/>: its text, the tool calls found in it, and what the turn cost.</summary>
/// <param name="Text">The reply's text without the tool-call markup (the whole text when there is none).</param>
/// <param name="ToolCalls">The tool calls the model wrote, parsed (<see cref="ChatToolCall.Parse"/>); empty when none.</param>
/// <param name="Result">The generated tokens, their log-probabilities and why generation stopped.</param>
/// <param name="PromptTokenCount">Tokens of the rendered conversation the reply was generated after.</param>
/// <param name="ReusedTokenCount">Leading prompt tokens already in the session's cache from earlier turns, not run again.</param>
public sealed record ChatReply(string Text, IReadOnlyList<ChatToolCall> ToolCalls, GenerationResult Result, int PromptTokenCount, int ReusedTokenCount)
{
    /// <summary>Prompt tokens that ran through the model this turn: <see cref="PromptTokenCount"/> − <see cref="ReusedTokenCount"/>.</summary>
    public int PrefilledTokenCount => PromptTokenCount - ReusedTokenCount;
}
