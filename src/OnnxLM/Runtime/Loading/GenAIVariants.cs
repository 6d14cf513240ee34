namespace OnnxLM;

/// <summary>
/// The variants of an ONNX Runtime GenAI hub folder (as Microsoft publishes them, e.g. Phi-3-mini-4k-instruct-onnx):
/// subfolders such as <c>cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4</c> or <c>cuda/cuda-fp16</c>, each a complete
/// GenAI model folder with its own <c>genai_config.json</c>, graph and tokenizer. Found up to <see cref="MaxDepth"/> levels
/// down; hidden folders (<c>.git</c>, <c>.cache</c>) are skipped.
/// </summary>
internal static class GenAIVariants
{
    public const int MaxDepth = 3;
    private const int MaxFolders = 10_000;

    /// <summary>Paths relative to <paramref name="root"/>, with '/', of the subfolders holding a <c>genai_config.json</c>, in ordinal order.</summary>
    public static IReadOnlyList<string> Find(string root)
    {
        var found = new List<string>();
        var visited = 0;
        void Walk(string folder, string relative, int depth)
        {
            if (depth > MaxDepth || ++visited > MaxFolders) return;
            if (depth > 0 && File.Exists(Path.Combine(folder, ModelConfig.GenAIConfigFile)))
            {
                found.Add(relative);
                return;
            }

            foreach (var sub in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileName(sub);
                if (name.StartsWith('.')) continue;
                if (new DirectoryInfo(sub).LinkTarget is not null) continue; // a link could lead outside the folder, or in a circle
                Walk(sub, relative.Length == 0 ? name : relative + "/" + name, depth + 1);
            }
        }

        Walk(root, "", 0);
        found.Sort(StringComparer.Ordinal);
        return found;
    }

    /// <summary>
    /// The variant to load: <paramref name="variant"/> by relative path or unique last segment, or without one the best for
    /// the provider (<paramref name="cuda"/>; on <see cref="ExecutionProvider.Auto"/> <paramref name="fallBackToCpu"/> lets
    /// a CPU variant stand in when there is no CUDA one).
    /// </summary>
    /// <exception cref="ModelFormatException">The variant is not there, is ambiguous, or none suits the provider; the message lists the variants.</exception>
    public static string Choose(string root, IReadOnlyList<string> variants, string? variant, bool cuda, bool fallBackToCpu)
    {
        string List() => string.Join(", ", variants);
        if (variant is not null)
        {
            var wanted = variant.Replace('\\', '/').Trim('/');
            var exact = variants.FirstOrDefault(v => string.Equals(v, wanted, StringComparison.Ordinal));
            if (exact is not null) return exact;
            var byName = variants.Where(v => string.Equals(v[(v.LastIndexOf('/') + 1)..], wanted, StringComparison.Ordinal)).ToArray();
            if (byName.Length == 1) return byName[0];
            throw new ModelFormatException(byName.Length > 1
                ? $"Variant '{variant}' is ambiguous in '{root}': it names {string.Join(", ", byName)}; give the whole path."
                : $"Model folder '{root}' has no variant '{variant}'. Its variants: {List()}.", root);
        }

        var chosen = Best(variants, cuda) ?? (cuda && fallBackToCpu ? Best(variants, cuda: false) : null);
        // Said as the plain "not a model folder" error too: a folder that merely contains a model somewhere below (a
        // repository's root holding models/x/genai_config.json) lands here.
        return chosen ?? throw new ModelFormatException(
            $"Model folder '{root}' has neither {ModelConfig.GenAIConfigFile} nor {ModelConfig.HuggingFaceConfigFile} at its root, and of the " +
            $"ONNX Runtime GenAI variant folders below it ({List()}) none is a {(cuda ? "CUDA (cuda/gpu)" : "CPU (cpu)")} variant; " +
            "give one with the variant option, or give the model's own folder.", root);
    }

    /// <summary>The provider's variants (a path segment naming cpu, or cuda/gpu), best first: acc-level-4 on the CPU (int8 activations, its fastest 4-bit kernel), fp16 on CUDA; then by path.</summary>
    private static string? Best(IReadOnlyList<string> variants, bool cuda)
    {
        bool Names(string v, string word) => v.Split('/').Any(s => s.Contains(word, StringComparison.OrdinalIgnoreCase));
        var matching = variants.Where(v => cuda ? Names(v, "cuda") || Names(v, "gpu") : Names(v, "cpu")).ToArray();
        var preferred = cuda ? "fp16" : "acc-level-4";
        return matching.FirstOrDefault(v => v.Contains(preferred, StringComparison.OrdinalIgnoreCase)) ?? matching.FirstOrDefault();
    }
}
