namespace OnnxLM;

/// <summary>Base type of the errors OnnxLM raises for problems with models, tokenizers and their files.</summary>
public class OnnxLMException : Exception
{
    /// <summary>Creates the exception with a message.</summary>
    public OnnxLMException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the error that caused it.</summary>
    public OnnxLMException(string message, Exception? innerException) : base(message, innerException) { }
}
