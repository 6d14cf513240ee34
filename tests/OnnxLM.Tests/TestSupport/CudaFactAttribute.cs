namespace OnnxLM.Tests;

/// <summary>
/// A fact that needs a usable CUDA device (the tests reference ONNX Runtime's GPU package, which falls back to the CPU);
/// skipped with the reason otherwise. Whether CUDA works is found once, by loading the repository's model on it.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class CudaFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> Unavailable = new(() =>
    {
        try
        {
            using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cuda });
            return null;
        }
        catch (ExecutionProviderUnavailableException e)
        {
            return e.Message;
        }
    });

    public CudaFactAttribute()
    {
        if (Unavailable.Value is { } reason)
        {
            Skip = $"no usable CUDA device here ({reason}); run build/gpu-check.sh on a machine with one";
        }
    }
}
