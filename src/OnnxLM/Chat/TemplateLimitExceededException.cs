namespace OnnxLM.Chat;

/// <summary>
/// Parsing or rendering stopped because the template went past one of the bounds of <see cref="TemplateOptions"/>
/// (steps, output size, nesting depth, macro call depth, render time); the message names the bound, its value and the
/// option that raises it. Templates are untrusted input, and these keep a hostile one from hanging, overflowing the
/// stack or exhausting the process.
/// </summary>
public sealed class TemplateLimitExceededException : TemplateException
{
    /// <summary>Creates the exception.</summary>
    public TemplateLimitExceededException(string message, int line, int column) : base(message, line, column) { }
}
