namespace OnnxLM.ModelBuilder;

/// <summary>Where a builder gets checkpoint tensors by their Hugging Face names, as float32 in row-major order.</summary>
public interface IWeightSource
{
    /// <summary>Whether the checkpoint has a tensor.</summary>
    bool Contains(string name);

    /// <summary>Reads a tensor, failing with <see cref="ModelFormatException"/> when it is missing or its shape differs.</summary>
    float[] Read(string name, params long[] shape);
}
