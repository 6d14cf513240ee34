namespace OnnxLM.Chat;

/// <summary>The template is not valid Jinja, or uses syntax the engine does not support; the message names the line and column.</summary>
public sealed class TemplateSyntaxException : TemplateException
{
    /// <summary>Creates the exception.</summary>
    public TemplateSyntaxException(string message, int line, int column) : base(message, line, column) { }
}
