namespace OnnxLM;

/// <summary>A sequence would grow past the model's context length (or the session's maximum length).</summary>
public sealed class ContextLengthExceededException : OnnxLMException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="requestedLength">The number of tokens the operation needs.</param>
    /// <param name="maxLength">The largest number of tokens allowed.</param>
    /// <param name="message">A description naming what was too long.</param>
    public ContextLengthExceededException(int requestedLength, int maxLength, string message)
        : base(message)
    {
        RequestedLength = requestedLength;
        MaxLength = maxLength;
    }

    /// <summary>The number of tokens the operation needed.</summary>
    public int RequestedLength { get; }

    /// <summary>The largest number of tokens allowed.</summary>
    public int MaxLength { get; }
}
