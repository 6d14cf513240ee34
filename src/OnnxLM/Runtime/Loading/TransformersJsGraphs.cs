namespace OnnxLM;

/// <summary>
/// The graphs of a transformers.js / onnx-community folder: <c>config.json</c> and the tokenizer at the root, one graph per
/// dtype in <c>onnx/</c>, named <c>&lt;stem&gt;&lt;suffix&gt;.onnx</c> with the suffixes of transformers.js's
/// <c>DEFAULT_DTYPE_SUFFIX_MAPPING</c> (fp32 has none, q8 is <c>_quantized</c>). The stem is <c>model</c> (onnx-community's
/// decoder-only exports) or <c>decoder_model_merged</c> (older exports). External weights lie beside each graph as
/// <c>&lt;graph&gt;.onnx_data</c>, <c>_data_1</c>, … and are named by the graph itself, so ONNX Runtime finds them.
/// </summary>
internal static class TransformersJsGraphs
{
    public const string GraphFolder = "onnx";

    /// <summary>transformers.js's dtype names and file-name suffixes, in its own order.</summary>
    public static readonly (string Dtype, string Suffix)[] Suffixes =
    [
        ("fp32", ""), ("fp16", "_fp16"), ("q8", "_quantized"), ("int8", "_int8"), ("uint8", "_uint8"),
        ("q4", "_q4"), ("q4f16", "_q4f16"), ("bnb4", "_bnb4"),
    ];

    private static readonly string[] Stems = ["model", "decoder_model_merged"];

    /// <summary>
    /// The dtypes whose graph is in <paramref name="folder"/>'s <c>onnx/</c> subfolder, with their paths, in
    /// <see cref="Suffixes"/> order: those of the first stem that has any. Empty when there is no such graph.
    /// </summary>
    public static IReadOnlyList<(string Dtype, string Path)> Find(string folder)
    {
        var graphs = Path.Combine(folder, GraphFolder);
        if (!Directory.Exists(graphs)) return [];
        foreach (var stem in Stems)
        {
            var found = Suffixes
                .Select(s => (s.Dtype, Path: Path.Combine(graphs, stem + s.Suffix + ".onnx")))
                .Where(g => File.Exists(g.Path))
                .ToArray();
            if (found.Length > 0) return found;
        }

        return [];
    }

    /// <summary>
    /// The graph to load: <paramref name="dtype"/>'s, or without one the first of <paramref name="order"/> the folder has.
    /// </summary>
    /// <exception cref="ModelFormatException">The dtype is not a transformers.js name or the folder lacks it; the message lists what it has.</exception>
    public static (string Dtype, string Path) Choose(string folder, IReadOnlyList<(string Dtype, string Path)> graphs, string? dtype, IReadOnlyList<string> order)
    {
        string Has() => string.Join(", ", graphs.Select(g => $"{g.Dtype} ({GraphFolder}/{System.IO.Path.GetFileName(g.Path)})"));
        if (dtype is null)
        {
            foreach (var preferred in order)
            {
                foreach (var graph in graphs)
                {
                    if (graph.Dtype == preferred) return graph;
                }
            }

            return graphs[0];
        }

        var name = dtype.ToLowerInvariant();
        if (!Suffixes.Any(s => s.Dtype == name))
        {
            throw new ModelFormatException(
                $"Unknown dtype '{dtype}': the transformers.js dtypes are {string.Join(", ", Suffixes.Select(s => s.Dtype))}. " +
                $"Model folder '{folder}' has: {Has()}.", folder);
        }

        foreach (var graph in graphs)
        {
            if (graph.Dtype == name) return graph;
        }

        var suffix = Suffixes.First(s => s.Dtype == name).Suffix;
        var stem = System.IO.Path.GetFileNameWithoutExtension(graphs[0].Path);
        stem = stem[..(stem.Length - Suffixes.First(s => s.Dtype == graphs[0].Dtype).Suffix.Length)];
        throw new ModelFormatException(
            $"Model folder '{folder}' has no {name} graph ({GraphFolder}/{stem}{suffix}.onnx). It has: {Has()}; choose one of those dtypes.", folder);
    }
}
