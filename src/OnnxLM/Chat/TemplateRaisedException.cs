namespace OnnxLM.Chat;

/// <summary>
/// The template itself refused the input by calling <c>raise_exception(message)</c> — typically a conversation whose
/// roles do not alternate the way the model expects. <see cref="TemplateException.Reason"/> is the template's own message.
/// </summary>
public sealed class TemplateRaisedException : TemplateException
{
    /// <summary>Creates the exception.</summary>
    public TemplateRaisedException(string message, int line, int column) : base(message, line, column) { }
}
