namespace OnnxLM;

/// <summary>
/// ONNX Runtime failed while running the model graph. The message names the graph, the shapes that were fed and
/// ONNX Runtime's own error; <see cref="Exception.InnerException"/> is that error.
/// </summary>
public sealed class ModelRunException : OnnxLMException
{
    /// <summary>Creates the exception.</summary>
    public ModelRunException(string message, string graphPath, Exception innerException) : base(message, innerException) => GraphPath = graphPath;

    /// <summary>The ONNX file that failed.</summary>
    public string GraphPath { get; }
}
