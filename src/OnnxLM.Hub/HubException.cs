namespace OnnxLM.Hub;

/// <summary>A download from the Hub failed; <see cref="Kind"/> says why and the message says what to do.</summary>
public sealed class HubException : OnnxLMException
{
    /// <summary>Creates the exception.</summary>
    public HubException(HubErrorKind kind, string message, Exception? innerException = null) : base(message, innerException) => Kind = kind;

    /// <summary>What went wrong.</summary>
    public HubErrorKind Kind { get; }

    /// <summary>The HTTP status the Hub answered, when one did.</summary>
    public int? StatusCode { get; init; }
}
