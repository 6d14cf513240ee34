namespace OnnxLM.Chat;

/// <summary>
/// A chat template could not be rendered: a runtime error in the template (an unknown filter, an operation on the
/// wrong types, an unpacking that does not fit). <see cref="Line"/> and <see cref="Column"/> point into the template.
/// The subclasses say more: <see cref="TemplateSyntaxException"/>, <see cref="TemplateRaisedException"/>,
/// <see cref="TemplateLimitExceededException"/>.
/// </summary>
public class TemplateException : OnnxLMException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong; the position is appended.</param>
    /// <param name="line">1-based line in the template, or 0 when unknown.</param>
    /// <param name="column">1-based column in the template, or 0 when unknown.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public TemplateException(string message, int line = 0, int column = 0, Exception? innerException = null)
        : base(line > 0 ? $"{message} (template line {line}, column {column})" : message, innerException)
    {
        Line = line;
        Column = column;
        Reason = message;
    }

    /// <summary>The 1-based template line the error was found at, or 0 when unknown.</summary>
    public int Line { get; }

    /// <summary>The 1-based template column the error was found at, or 0 when unknown.</summary>
    public int Column { get; }

    /// <summary>The message without the position.</summary>
    public string Reason { get; }
}
