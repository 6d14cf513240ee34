using System.Text.RegularExpressions;

namespace OnnxLM.Hub;

/// <summary>The files of a repository one model needs: configuration, tokenizer and template files, and one graph with its external data.</summary>
internal static partial class HubFileSelector
{
    /// <summary>transformers.js's dtype → file-name suffix of <c>onnx/model{suffix}.onnx</c>.</summary>
    public static readonly IReadOnlyDictionary<string, string> DtypeSuffixes = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["fp32"] = "",
        ["fp16"] = "_fp16",
        ["q8"] = "_quantized",
        ["int8"] = "_int8",
        ["uint8"] = "_uint8",
        ["q4"] = "_q4",
        ["q4f16"] = "_q4f16",
        ["bnb4"] = "_bnb4",
    };

    /// <summary>The files beside the graph that loading, tokenizing and chat read.</summary>
    public static readonly IReadOnlySet<string> SupportFiles = new HashSet<string>(StringComparer.Ordinal)
    {
        "config.json", "generation_config.json", "genai_config.json",
        "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "merges.txt", "special_tokens_map.json", "added_tokens.json",
        "chat_template.jinja", "chat_template.json",
    };

    // transformers.js names decoder-only graphs onnx/model*.onnx; older onnx-community exports onnx/decoder_model_merged*.onnx.
    private static readonly string[] GraphBases = ["model", "decoder_model_merged"];

    // Optimum's plain layout: the merged decoder (one graph with and without past) wins over model.onnx.
    private static readonly string[] PlainGraphs = ["decoder_model_merged.onnx", "model.onnx"];

    /// <summary>Picks the files; throws <see cref="HubException"/> (NoMatchingFiles) naming what the repository has.</summary>
    public static Selection Select(string repoId, IReadOnlyCollection<string> files, string? dtype, string? variant)
    {
        var variants = files.Where(f => f.EndsWith("/genai_config.json", StringComparison.Ordinal))
            .Select(f => f[..^"/genai_config.json".Length]).Order(StringComparer.Ordinal).ToList();
        if (variants.Count > 0 && !files.Any(f => f.StartsWith("onnx/", StringComparison.Ordinal)))
        {
            if (dtype is not null)
            {
                throw NoMatch($"'{repoId}' is an ONNX Runtime GenAI repository with variant folders, not dtype graphs: give a variant instead of dtype '{dtype}' ({string.Join(", ", variants)}).");
            }

            var chosen = ChooseVariant(repoId, variants, variant);
            var prefix = chosen + "/";
            return new Selection(files.Where(f => f.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList(), null, chosen);
        }

        if (variant is not null)
        {
            throw NoMatch($"'{repoId}' has no GenAI variant folders (no */genai_config.json), so variant '{variant}' cannot be chosen.");
        }

        var support = files.Where(SupportFiles.Contains).ToList();
        var graphs = DtypeGraphs(files);
        if (graphs.Count > 0)
        {
            if (dtype is not null && !DtypeSuffixes.ContainsKey(dtype))
            {
                throw NoMatch($"Unknown dtype '{dtype}': expected one of {string.Join(", ", DtypeSuffixes.Keys)}; '{repoId}' has {string.Join(", ", graphs.Keys)}.");
            }

            var chosen = dtype ?? ModelHub.DefaultDtypeOrder.FirstOrDefault(graphs.ContainsKey)
                ?? throw NoMatch($"'{repoId}' has none of the dtypes {string.Join(", ", ModelHub.DefaultDtypeOrder)}.");
            if (!graphs.TryGetValue(chosen, out var graph))
            {
                throw NoMatch($"'{repoId}' has no {chosen} graph (onnx/model{DtypeSuffixes[chosen]}.onnx); it has: {string.Join(", ", graphs.Keys)}.");
            }

            return new Selection([.. support.Append(graph).Concat(ExternalData(files, graph)).Order(StringComparer.Ordinal)], chosen, null);
        }

        var plain = PlainGraphs.FirstOrDefault(files.Contains);
        if (plain is null)
        {
            var onnx = files.Where(f => f.EndsWith(".onnx", StringComparison.Ordinal)).Take(10).ToList();
            throw NoMatch($"'{repoId}' holds no graph OnnxLM can load (looked for onnx/model*.onnx, */genai_config.json variants, model.onnx, decoder_model_merged.onnx); its .onnx files: {(onnx.Count == 0 ? "none" : string.Join(", ", onnx))}.");
        }

        if (dtype is not null)
        {
            throw NoMatch($"'{repoId}' keeps one graph ({plain}) and no onnx/ dtype graphs: leave out dtype '{dtype}'.");
        }

        return new Selection([.. support.Append(plain).Concat(ExternalData(files, plain)).Order(StringComparer.Ordinal)], null, null);
    }

    /// <summary>The dtypes present in <c>onnx/</c>, each with its graph (the <c>model</c> base name wins).</summary>
    public static Dictionary<string, string> DtypeGraphs(IReadOnlyCollection<string> files)
    {
        var graphs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, suffix) in DtypeSuffixes)
        {
            foreach (var graphBase in GraphBases)
            {
                var path = $"onnx/{graphBase}{suffix}.onnx";
                if (files.Contains(path))
                {
                    graphs[name] = path;
                    break;
                }
            }
        }

        return graphs;
    }

    /// <summary>External data of a graph: <c>&lt;graph&gt;_data</c>, <c>_data_1</c>, … (transformers.js, Optimum) or <c>&lt;graph&gt;.data</c> (GenAI).</summary>
    public static IEnumerable<string> ExternalData(IEnumerable<string> files, string graph) =>
        files.Where(f => f.StartsWith(graph, StringComparison.Ordinal) && DataSuffix().IsMatch(f.AsSpan(graph.Length)));

    private static string ChooseVariant(string repoId, List<string> variants, string? variant)
    {
        if (variant is not null)
        {
            var trimmed = variant.Trim('/');
            var match = variants.FirstOrDefault(v => v == trimmed) ?? variants.SingleOrDefault(v => v.EndsWith("/" + trimmed, StringComparison.Ordinal));
            return match ?? throw NoMatch($"'{repoId}' has no variant '{variant}'; it has: {string.Join(", ", variants)}.");
        }

        if (variants.Count == 1) return variants[0];
        return variants.FirstOrDefault(v => v.Contains("cpu", StringComparison.OrdinalIgnoreCase))
            ?? throw NoMatch($"'{repoId}' has several variants and none for the CPU; choose one: {string.Join(", ", variants)}.");
    }

    private static HubException NoMatch(string message) => new(HubErrorKind.NoMatchingFiles, message);

    [GeneratedRegex(@"^(_data(_\d+)?|\.data)$")]
    private static partial Regex DataSuffix();

    /// <summary>The chosen files and what chose them.</summary>
    public sealed record Selection(IReadOnlyList<string> Files, string? Dtype, string? Variant);
}
