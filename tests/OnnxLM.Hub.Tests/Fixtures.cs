using System.Text;

namespace OnnxLM.Hub.Tests;

/// <summary>Fixture repositories in the layouts the Hub publishes, with seeded random bytes for graphs and weights.</summary>
public static class Fixtures
{
    public const string CommunityId = "onnx-community/Tiny-Instruct-ONNX";
    public const string GenAiId = "microsoft/Tiny-instruct-onnx";
    public const string CpuVariant = "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4";
    public const string CudaVariant = "cuda/cuda-int4-rtn-block-32";

    /// <summary>onnx-community / transformers.js: config and tokenizer at the root, one graph per dtype in onnx/, q4 split in two data files.</summary>
    public static FakeRepo Community(string id = CommunityId) => new(id, new Dictionary<string, byte[]>
    {
        ["README.md"] = Text("# tiny"),
        [".gitattributes"] = Text("*.onnx filter=lfs"),
        ["config.json"] = Text("{\"model_type\":\"llama\"}"),
        ["generation_config.json"] = Text("{\"eos_token_id\":2}"),
        ["tokenizer.json"] = Bytes(1, 3000),
        ["tokenizer_config.json"] = Text("{\"chat_template\":\"{{ messages }}\"}"),
        ["special_tokens_map.json"] = Text("{}"),
        ["onnx/model.onnx"] = Bytes(2, 5000),
        ["onnx/model.onnx_data"] = Bytes(3, 200_000),
        ["onnx/model_fp16.onnx"] = Bytes(4, 100_000),
        ["onnx/model_quantized.onnx"] = Bytes(5, 60_000),
        ["onnx/model_q4.onnx"] = Bytes(6, 4000),
        ["onnx/model_q4.onnx_data"] = Bytes(7, 300_000),
        ["onnx/model_q4.onnx_data_1"] = Bytes(8, 120_000),
        ["onnx/model_q4f16.onnx"] = Bytes(9, 30_000),
    });

    /// <summary>ONNX Runtime GenAI hub repository: one folder per variant, each with its own genai_config.json.</summary>
    public static FakeRepo GenAi() => new(GenAiId, new Dictionary<string, byte[]>
    {
        ["README.md"] = Text("# genai"),
        [$"{CudaVariant}/genai_config.json"] = Text("{\"model\":{\"type\":\"llama\"}}"),
        [$"{CudaVariant}/model.onnx"] = Bytes(10, 3000),
        [$"{CudaVariant}/model.onnx.data"] = Bytes(11, 90_000),
        [$"{CudaVariant}/tokenizer.json"] = Bytes(12, 2000),
        [$"{CpuVariant}/genai_config.json"] = Text("{\"model\":{\"type\":\"llama\"}}"),
        [$"{CpuVariant}/model.onnx"] = Bytes(13, 3000),
        [$"{CpuVariant}/model.onnx.data"] = Bytes(14, 80_000),
        [$"{CpuVariant}/tokenizer.json"] = Bytes(15, 2000),
        [$"{CpuVariant}/tokenizer_config.json"] = Text("{}"),
    });

    /// <summary>A plain repository: one small graph at the root.</summary>
    public static FakeRepo Plain(string id) => new(id, new Dictionary<string, byte[]>
    {
        ["config.json"] = Text("{\"model_type\":\"gpt2\"}"),
        ["model.onnx"] = Bytes(16, 50_000),
        ["tokenizer.json"] = Bytes(17, 1000),
    });

    /// <summary>models/kjv-tiny's files arranged as a plain Hub repository (genai_config.json at the root, model.onnx beside it).</summary>
    public static FakeRepo KjvTiny(string id)
    {
        var folder = Path.Combine(RepoRoot, "models", "kjv-tiny");
        var files = Directory.GetFiles(folder).Where(f => Path.GetFileName(f) is not "summary.json" and not "train_log.csv")
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        return new FakeRepo(id, files);
    }

    public static string RepoRoot { get; } = FindRoot();

    public static byte[] Bytes(int seed, int length)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static byte[] Text(string s) => Encoding.UTF8.GetBytes(s);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OnnxLM.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("OnnxLM.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A fresh cache folder per test, deleted afterwards.</summary>
public sealed class TempCache : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "onnxlm-hub-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}
