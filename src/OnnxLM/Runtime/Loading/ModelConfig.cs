using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnnxLM;

/// <summary>
/// What a model folder's configuration files say about the model, before the graph is inspected.
/// The layouts read: ONNX Runtime GenAI (<c>genai_config.json</c>), its hub repositories (variant folders with their own
/// <c>genai_config.json</c>), Hugging Face Optimum (<c>config.json</c> + <c>generation_config.json</c> beside <c>model.onnx</c>
/// or <c>decoder_model_merged.onnx</c>) and transformers.js (the same files with one graph per dtype in <c>onnx/</c>).
/// Values a file does not state stay null and are filled in from the graph.
/// </summary>
internal sealed class ModelConfig
{
    public const string GenAIConfigFile = "genai_config.json";
    public const string HuggingFaceConfigFile = "config.json";

    public required string Folder { get; init; }
    public required string ConfigFile { get; init; }
    public required string GraphFile { get; init; }
    public required ModelFolderLayout FolderLayout { get; init; }
    public string ModelType { get; init; } = "unknown";
    public int? ContextLength { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    public int? VocabularySize { get; init; }
    public int? HeadSize { get; init; }
    public int? HiddenSize { get; init; }
    public int? AttentionHeadCount { get; init; }
    public int? KeyValueHeadCount { get; init; }
    public int? LayerCount { get; init; }

    /// <summary>Graph input/output names the config states (GenAI templates such as <c>past_key_values.%d.key</c>).</summary>
    public IReadOnlyDictionary<string, string> Names { get; init; } = new Dictionary<string, string>();

    /// <summary>Session options entries from genai_config.json (string values only; provider options are not applied).</summary>
    public IReadOnlyDictionary<string, string> SessionConfigEntries { get; init; } = new Dictionary<string, string>();

    /// <summary>Execution providers genai_config.json asks for (informational; OnnxLM chooses by its own options).</summary>
    public IReadOnlyList<string> ConfiguredProviders { get; init; } = [];

    /// <summary>Search defaults (max_length, temperature, top_k, top_p, do_sample) as stated by the config.</summary>
    public SearchDefaults Search { get; init; } = new();

    internal sealed record SearchDefaults(int? MaxLength = null, float? Temperature = null, int? TopK = null, float? TopP = null, bool? DoSample = null);

    /// <summary>The dtype of a transformers.js folder's chosen graph (fp32, fp16, q8, ...); null for other layouts.</summary>
    public string? Dtype { get; init; }

    /// <summary>The chosen variant of a GenAI hub folder, relative with '/'; null for other layouts.</summary>
    public string? Variant { get; init; }

    /// <summary>
    /// Reads <paramref name="folder"/> in whichever layout it is: GenAI (<c>genai_config.json</c>), transformers.js
    /// (<c>config.json</c> + graphs in <c>onnx/</c>, one chosen by <see cref="LanguageModelOptions.Dtype"/>), Optimum
    /// (<c>config.json</c> + graph), or a GenAI hub root whose variant folders are chosen by <see cref="LanguageModelOptions.Variant"/>
    /// or the provider. <see cref="Folder"/> is then the folder that holds the model's own files (the variant's, for a hub root).
    /// </summary>
    public static ModelConfig Load(string folder, LanguageModelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (!Directory.Exists(folder))
        {
            throw new ModelFormatException(File.Exists(folder) ? $"Model folder '{folder}' is a file, not a folder; give the folder that holds it." : $"Model folder '{folder}' does not exist.", folder);
        }

        var dtype = options?.Dtype;
        var variant = options?.Variant;
        var genai = Path.Combine(folder, GenAIConfigFile);
        if (File.Exists(genai))
        {
            RejectChoice(folder, dtype, variant, "the ONNX Runtime GenAI layout (genai_config.json beside one graph)");
            return LoadGenAI(folder, genai).Checked();
        }

        var hf = Path.Combine(folder, HuggingFaceConfigFile);
        if (File.Exists(hf))
        {
            var graphs = TransformersJsGraphs.Find(folder);
            if (graphs.Count > 0)
            {
                RejectChoice(folder, null, variant, "the transformers.js layout (graphs in onnx/, chosen by dtype)");
                var (chosenDtype, graph) = TransformersJsGraphs.Choose(folder, graphs, dtype,
                    dtype is null && PrefersCuda(options) ? LanguageModelOptions.CudaDtypeOrder : LanguageModelOptions.CpuDtypeOrder);
                return LoadHuggingFace(folder, hf, graph, chosenDtype).Checked();
            }

            RejectChoice(folder, dtype, variant, "the Hugging Face Optimum layout (config.json beside one graph)");
            return LoadHuggingFace(folder, hf).Checked();
        }

        var variants = GenAIVariants.Find(folder);
        if (variants.Count > 0)
        {
            RejectChoice(folder, dtype, null, "an ONNX Runtime GenAI hub layout (variant folders, chosen by variant)");
            var provider = options?.ExecutionProvider ?? ExecutionProvider.Auto;
            var chosen = GenAIVariants.Choose(folder, variants, variant, variant is null && PrefersCuda(options), fallBackToCpu: provider == ExecutionProvider.Auto);
            var variantFolder = Path.Combine(folder, chosen.Replace('/', Path.DirectorySeparatorChar));
            return LoadGenAI(variantFolder, Path.Combine(variantFolder, GenAIConfigFile), ModelFolderLayout.OnnxRuntimeGenAIVariants, chosen).Checked();
        }

        throw new ModelFormatException(
            $"Model folder '{folder}' has neither {GenAIConfigFile} (ONNX Runtime GenAI layout) nor {HuggingFaceConfigFile} " +
            $"(Hugging Face Optimum layout, or transformers.js with graphs in onnx/), nor variant folders with {GenAIConfigFile} " +
            $"(ONNX Runtime GenAI hub layout). Found: {DescribeFolder(folder)}.", folder);
    }

    /// <summary>A dtype or variant given for a folder that has no such choice fails, rather than being silently ignored.</summary>
    private static void RejectChoice(string folder, string? dtype, string? variant, string layout)
    {
        if (dtype is not null)
        {
            throw new ModelFormatException(
                $"Dtype '{dtype}' was given, but model folder '{folder}' is in {layout}; a dtype chooses among the graphs of a transformers.js folder (onnx/model_q4.onnx, ...). Leave it unset.", folder);
        }

        if (variant is not null)
        {
            throw new ModelFormatException(
                $"Variant '{variant}' was given, but model folder '{folder}' is in {layout}; a variant chooses among the variant folders of an ONNX Runtime GenAI hub folder. Leave it unset or give the hub folder.", folder);
        }
    }

    /// <summary>Whether the dtype and variant defaults should suit CUDA: asked for, or on Auto when CUDA can be set up here.</summary>
    private static bool PrefersCuda(LanguageModelOptions? options) => (options?.ExecutionProvider ?? ExecutionProvider.Auto) switch
    {
        ExecutionProvider.Cuda => true,
        ExecutionProvider.Cpu => false,
        _ => DecoderGraph.CudaUsable(options?.DeviceId ?? 0),
    };

    private static ModelConfig LoadGenAI(string folder, string file, ModelFolderLayout layout = ModelFolderLayout.OnnxRuntimeGenAI, string? variant = null)
    {
        var root = ReadJson(file);
        var model = root["model"] as JsonObject
            ?? throw new ModelFormatException($"{file} has no \"model\" object.", file);
        var decoder = model["decoder"] as JsonObject
            ?? throw new ModelFormatException($"{file} has no \"model.decoder\" object.", file);
        var fileName = GetString(decoder, "filename", file)
            ?? throw new ModelFormatException($"{file} has no \"model.decoder.filename\".", file);

        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        CollectNames(decoder["inputs"] as JsonObject, names, file);
        CollectNames(decoder["outputs"] as JsonObject, names, file);

        var sessionEntries = new Dictionary<string, string>(StringComparer.Ordinal);
        var providers = new List<string>();
        if (decoder["session_options"] is JsonObject sessionOptions)
        {
            foreach (var (key, value) in sessionOptions)
            {
                if (key == "provider_options" && value is JsonArray list)
                {
                    foreach (var entry in list.OfType<JsonObject>())
                    {
                        providers.AddRange(entry.Select(p => p.Key));
                    }
                }
                else if (value is JsonValue v && v.TryGetValue<string>(out var s) && key.Contains('.'))
                {
                    // Dotted keys are ONNX Runtime session config entries ("session.use_device_allocator_for_initializers").
                    sessionEntries[key] = s;
                }
            }
        }

        SearchDefaults search = new();
        if (root["search"] is JsonObject s2)
        {
            search = new SearchDefaults(
                GetInt(s2, "max_length", file), GetFloat(s2, "temperature", file), GetInt(s2, "top_k", file),
                GetFloat(s2, "top_p", file), GetBool(s2, "do_sample", file));
        }

        return new ModelConfig
        {
            Folder = folder,
            ConfigFile = file,
            GraphFile = ResolveGraph(folder, fileName, file),
            FolderLayout = layout,
            Variant = variant,
            ModelType = GetString(model, "type", file) ?? "unknown",
            ContextLength = GetInt(model, "context_length", file),
            BosTokenId = GetInt(model, "bos_token_id", file),
            EosTokenIds = GetIntList(model, "eos_token_id", file),
            PadTokenId = GetInt(model, "pad_token_id", file),
            VocabularySize = GetInt(model, "vocab_size", file),
            HeadSize = GetInt(decoder, "head_size", file),
            HiddenSize = GetInt(decoder, "hidden_size", file),
            AttentionHeadCount = GetInt(decoder, "num_attention_heads", file),
            KeyValueHeadCount = GetInt(decoder, "num_key_value_heads", file),
            LayerCount = GetInt(decoder, "num_hidden_layers", file),
            Names = names,
            SessionConfigEntries = sessionEntries,
            ConfiguredProviders = providers,
            Search = search,
        };
    }

    private static ModelConfig LoadHuggingFace(string folder, string file, string? chosenGraph = null, string? dtype = null)
    {
        var config = ReadJson(file);
        JsonObject? generation = null;
        var generationFile = Path.Combine(folder, "generation_config.json");
        if (File.Exists(generationFile))
        {
            generation = ReadJson(generationFile);
        }

        string[] candidates = ["model.onnx", "decoder_model_merged.onnx", "decoder_with_past_model.onnx"];
        var graph = chosenGraph ?? candidates.Select(c => Path.Combine(folder, c)).FirstOrDefault(File.Exists)
            ?? Directory.EnumerateFiles(folder, "*.onnx").OrderBy(f => f, StringComparer.Ordinal).FirstOrDefault()
            ?? throw new ModelFormatException(
                $"Model folder '{folder}' has {HuggingFaceConfigFile} but no ONNX graph (expected one of {string.Join(", ", candidates)}). " +
                $"Found: {DescribeFolder(folder)}.", folder);

        var heads = GetInt(config, "num_attention_heads", file) ?? GetInt(config, "n_head", file);
        var hidden = GetInt(config, "hidden_size", file) ?? GetInt(config, "n_embd", file);
        int? headSize = GetInt(config, "head_dim", file) ?? (heads is > 0 && hidden is not null ? hidden / heads : null);

        var eos = GetIntList(config, "eos_token_id", file);
        if (generation is not null && GetIntList(generation, "eos_token_id", generationFile) is { Count: > 0 } genEos)
        {
            eos = genEos;
        }

        SearchDefaults search = new();
        if (generation is not null)
        {
            search = new SearchDefaults(
                GetInt(generation, "max_length", generationFile), GetFloat(generation, "temperature", generationFile),
                GetInt(generation, "top_k", generationFile), GetFloat(generation, "top_p", generationFile),
                GetBool(generation, "do_sample", generationFile));
        }

        return new ModelConfig
        {
            Folder = folder,
            ConfigFile = file,
            GraphFile = graph,
            FolderLayout = dtype is null ? ModelFolderLayout.HuggingFaceOptimum : ModelFolderLayout.TransformersJs,
            Dtype = dtype,
            ModelType = GetString(config, "model_type", file) ?? "unknown",
            ContextLength = GetInt(config, "max_position_embeddings", file) ?? GetInt(config, "n_positions", file),
            BosTokenId = (generation is null ? null : GetInt(generation, "bos_token_id", generationFile)) ?? GetInt(config, "bos_token_id", file),
            EosTokenIds = eos,
            PadTokenId = (generation is null ? null : GetInt(generation, "pad_token_id", generationFile)) ?? GetInt(config, "pad_token_id", file),
            VocabularySize = GetInt(config, "vocab_size", file),
            HeadSize = headSize,
            HiddenSize = hidden,
            AttentionHeadCount = heads,
            KeyValueHeadCount = GetInt(config, "num_key_value_heads", file) ?? heads,
            LayerCount = GetInt(config, "num_hidden_layers", file) ?? GetInt(config, "n_layer", file),
            Search = search,
        };
    }

    /// <summary>
    /// The sizes and ids the config states, checked for sense before any graph is loaded: counts at least 1 and at most
    /// <see cref="MaxCount"/>, a context at most <see cref="MaxContextLength"/>, BOS and EOS inside the vocabulary (padding ids
    /// are left alone: some configs write −1 for "none").
    /// </summary>
    private ModelConfig Checked()
    {
        void Count(int? value, string key, int max)
        {
            if (value is { } v && (v < 1 || v > max))
            {
                throw new ModelFormatException($"{ConfigFile}: \"{key}\" is {v}; it must be between 1 and {max:N0}.", ConfigFile);
            }
        }

        Count(ContextLength, "context_length", MaxContextLength);
        Count(VocabularySize, "vocab_size", MaxVocabularySize);
        Count(LayerCount, "num_hidden_layers", MaxCount);
        Count(AttentionHeadCount, "num_attention_heads", MaxCount);
        Count(KeyValueHeadCount, "num_key_value_heads", MaxCount);
        Count(HeadSize, "head_size", MaxCount);
        Count(HiddenSize, "hidden_size", MaxVocabularySize);
        void Id(int? id, string key)
        {
            if (id is { } i && (i < 0 || (VocabularySize is { } vocab && i >= vocab)))
            {
                throw new ModelFormatException($"{ConfigFile}: \"{key}\" is {i}, outside the vocabulary (ids 0 to {(VocabularySize ?? int.MaxValue) - 1}).", ConfigFile);
            }
        }

        Id(BosTokenId, "bos_token_id");
        foreach (var eos in EosTokenIds) Id(eos, "eos_token_id");
        return this;
    }

    private const int MaxCount = 100_000;
    private const int MaxVocabularySize = 16_777_216;
    private const int MaxContextLength = 16_777_216;

    private static string ResolveGraph(string folder, string fileName, string configFile)
    {
        // The graph must lie inside the model folder: a config from elsewhere must not make the loader read any file it names.
        if (fileName.Length == 0 || fileName.IndexOfAny([.. Path.GetInvalidPathChars(), '\0']) >= 0)
        {
            throw new ModelFormatException($"{configFile} names the decoder graph {JsonSerializer.Serialize(fileName)}, which is not a valid file name.", configFile);
        }

        var root = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        var full = Path.GetFullPath(Path.Combine(folder, fileName));
        if (Path.IsPathRooted(fileName) || !full.StartsWith(root, StringComparison.Ordinal))
        {
            throw new ModelFormatException($"{configFile} names the decoder graph '{fileName}', which is outside the model folder; name a file inside it.", configFile);
        }

        var path = Path.Combine(folder, fileName);
        if (!File.Exists(path))
        {
            throw new ModelFormatException(
                $"{configFile} names the decoder graph '{fileName}', but '{path}' does not exist. Found: {DescribeFolder(folder)}.", path);
        }

        return path;
    }

    private static void CollectNames(JsonObject? section, Dictionary<string, string> names, string file)
    {
        if (section is null)
        {
            return;
        }

        foreach (var (key, value) in section)
        {
            if (value is JsonValue v && v.TryGetValue<string>(out var name))
            {
                names[key] = name;
            }
        }
    }

    /// <summary>Reads a JSON object from a model-folder file (through <see cref="ModelFile"/>: regular files of at most <paramref name="maxBytes"/>).</summary>
    internal static JsonObject ReadJson(string file, long maxBytes = ModelFile.MaxConfigBytes)
    {
        try
        {
            var bytes = ModelFile.ReadAllBytes(file, maxBytes);
            return JsonNode.Parse(bytes, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }) as JsonObject
                ?? throw new ModelFormatException($"{file} does not hold a JSON object.", file);
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{file} is not valid JSON: {e.Message}", file, e);
        }
        catch (IOException e)
        {
            throw new ModelFormatException($"{file} could not be read: {e.Message}", file, e);
        }
    }

    private static string? GetString(JsonObject obj, string key, string file) => obj[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        var other => throw WrongType(file, key, "a string", other),
    };

    private static int? GetInt(JsonObject obj, string key, string file) => obj[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<int>(out var i) => i,
        JsonValue v when v.TryGetValue<double>(out var d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue => (int)d,
        var other => throw WrongType(file, key, "an integer", other),
    };

    private static float? GetFloat(JsonObject obj, string key, string file) => obj[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<double>(out var d) => (float)d,
        var other => throw WrongType(file, key, "a number", other),
    };

    private static bool? GetBool(JsonObject obj, string key, string file) => obj[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        var other => throw WrongType(file, key, "true or false", other),
    };

    /// <summary>Reads an id that may be an integer or a list of integers (eos_token_id is either).</summary>
    private static IReadOnlyList<int> GetIntList(JsonObject obj, string key, string file) => obj[key] switch
    {
        null => [],
        JsonArray array => array.Select(n => n is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw WrongType(file, key, "a list of integers", array)).ToArray(),
        JsonValue v when v.TryGetValue<int>(out var i) => [i],
        var other => throw WrongType(file, key, "an integer or a list of integers", other),
    };

    private static ModelFormatException WrongType(string file, string key, string expected, JsonNode? found) =>
        new($"{file}: \"{key}\" should be {expected}, found {found?.ToJsonString() ?? "null"}.", file);

    internal static string DescribeFolder(string folder)
    {
        var files = Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).Take(20).ToArray();
        return files.Length == 0 ? "an empty folder" : string.Join(", ", files);
    }
}
