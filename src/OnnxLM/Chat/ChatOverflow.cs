namespace OnnxLM.Chat;

/// <summary>What a <see cref="ChatSession"/> does when the conversation no longer fits the model's context.</summary>
public enum ChatOverflow
{
    /// <summary>Fail the turn with <see cref="ContextLengthExceededException"/>; the conversation is left as it was.</summary>
    Throw,

    /// <summary>Drop the oldest turns (never the system messages, never the newest message) until the prompt fits.</summary>
    DropOldestTurns,
}
