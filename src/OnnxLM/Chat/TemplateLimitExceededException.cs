namespace OnnxLM.Chat;

/// <summary>
/// Rendering stopped because the template went past one of the bounds of <see cref="TemplateOptions"/> (output size,
/// loop iterations, call depth): templates are untrusted input, and these keep a hostile one from hanging or
/// exhausting the process.
/// </summary>
public sealed class TemplateLimitExceededException : TemplateException
{
    /// <summary>Creates the exception.</summary>
    public TemplateLimitExceededException(string message, int line, int column) : base(message, line, column) { }
}
