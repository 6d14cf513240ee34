
namespace OnnxLM.ModelBuilder.Onnx;

/// <summary>
/// The weights of a float model folder written by this builder, read back from its graph's initializers under their
/// Hugging Face names. The builder stores Llama projection matrices transposed ([inputs, outputs], what MatMul takes),
/// so 2-D Llama weights other than the embedding are transposed back here; GPT-2's Conv1D weights are stored as the
/// checkpoint has them.
/// </summary>
internal sealed class BuiltGraphWeights : IWeightSource
{
    private readonly OnnxModelFile _file;
    private readonly DecoderConfig _config;
    private readonly string _path;

    private BuiltGraphWeights(OnnxModelFile file, DecoderConfig config, string path) => (_file, _config, _path) = (file, config, path);

    /// <summary>A folder with model.onnx and no safetensors file.</summary>
    public static bool IsBuiltFolder(string folder) =>
        File.Exists(Path.Combine(folder, "model.onnx")) && Directory.GetFiles(folder, "*.safetensors").Length == 0;

    public static BuiltGraphWeights Open(string folder, DecoderConfig config)
    {
        var path = Path.Combine(folder, "model.onnx");
        var file = OnnxModelFile.Read(path);
        var expected = config.ModelType == "gpt2" ? "wte.weight" : "model.embed_tokens.weight";
        if (!file.Initializers.ContainsKey(expected) && !file.Initializers.ContainsKey("transformer." + expected))
        {
            throw new ModelFormatException(
                $"'{path}' has no initializer '{expected}': only float graphs written by OnnxLM's model builder can be read back as a checkpoint (give a Hugging Face folder with safetensors otherwise).", path);
        }

        if (file.Initializers.Values.FirstOrDefault(i => i.DataType is not (1 or 10 or 16 or 7)) is { } packed)
        {
            throw new ModelFormatException(
                $"'{path}' holds quantized weights ('{packed.Name}'); convert from the float model folder or the Hugging Face checkpoint instead.", path);
        }

        return new BuiltGraphWeights(file, config, path);
    }

    public bool Contains(string name) => _file.Initializers.ContainsKey(name);

    public float[] Read(string name, params long[] shape)
    {
        var init = _file.Initializers.GetValueOrDefault(name)
            ?? throw new ModelFormatException($"'{_path}' has no initializer '{name}'.", _path);
        var values = _file.ReadFloats(init);
        var transposed = _config.ModelType == "llama" && shape.Length == 2 && name != "model.embed_tokens.weight";
        long[] stored = transposed ? [shape[1], shape[0]] : shape;
        if (!init.Dims.SequenceEqual(stored))
        {
            throw new ModelFormatException(
                $"Initializer '{name}' has shape [{string.Join(", ", init.Dims)}]; [{string.Join(", ", stored)}] was expected from config.json.", _path);
        }

        return transposed ? Matrix.Transpose(values, (int)shape[1], (int)shape[0]) : values;
    }
}
