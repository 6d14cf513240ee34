namespace OnnxLM.Chat;

/// <summary>How a <see cref="ChatSession"/> renders its conversation and what it does when the conversation outgrows the context.</summary>
public sealed class ChatSessionOptions
{
    /// <summary>A system message that starts the conversation, or null for none.</summary>
    public string? SystemPrompt { get; set; }

    /// <summary>Tools offered to the model on every turn.</summary>
    public IList<ChatTool> Tools { get; } = [];

    /// <summary>More template variables on every turn (<c>enable_thinking</c>, <c>date_string</c>…).</summary>
    public IDictionary<string, object?> TemplateVariables { get; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>What to do when the rendered conversation does not fit the context (default <see cref="ChatOverflow.Throw"/>).</summary>
    public ChatOverflow Overflow { get; set; } = ChatOverflow.Throw;

    /// <summary>Tokens of the context kept free for the reply when fitting the prompt (default 1, at least 1).</summary>
    public int ReservedReplyTokens { get; set => field = OptionCheck.AtLeast(value, 1, nameof(ReservedReplyTokens)); } = 1;
}
