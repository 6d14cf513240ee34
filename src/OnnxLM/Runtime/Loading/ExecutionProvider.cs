namespace OnnxLM;

/// <summary>Where ONNX Runtime runs the model.</summary>
public enum ExecutionProvider
{
    /// <summary>Try CUDA; when it cannot be used, fall back to the CPU and log why.</summary>
    Auto,

    /// <summary>The CPU execution provider.</summary>
    Cpu,

    /// <summary>The CUDA execution provider on <see cref="LanguageModelOptions.DeviceId"/>; loading fails if CUDA is unavailable.</summary>
    Cuda,
}
