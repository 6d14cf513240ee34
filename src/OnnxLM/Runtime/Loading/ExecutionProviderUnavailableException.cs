namespace OnnxLM;

/// <summary>The requested execution provider (CUDA) cannot be used on this machine or with the ONNX Runtime package in use.</summary>
public sealed class ExecutionProviderUnavailableException : OnnxLMException
{
    /// <summary>Creates the exception.</summary>
    public ExecutionProviderUnavailableException(string message, Exception? innerException = null) : base(message, innerException) { }
}
