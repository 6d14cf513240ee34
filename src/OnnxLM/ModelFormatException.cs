namespace OnnxLM;

/// <summary>
/// A model folder, configuration file, tokenizer file or ONNX graph is missing, unreadable or in a layout
/// OnnxLM does not understand. The message names the file or tensor and what was expected.
/// </summary>
public sealed class ModelFormatException : OnnxLMException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was wrong, naming the file or tensor.</param>
    /// <param name="path">The file or folder concerned, if any.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public ModelFormatException(string message, string? path = null, Exception? innerException = null)
        : base(message, innerException) => Path = path;

    /// <summary>The file or folder the problem was found in, when known.</summary>
    public string? Path { get; }
}
