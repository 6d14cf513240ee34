using System.Text;
using System.Text.Json.Nodes;

namespace OnnxLM.Tests;

/// <summary>
/// The bad-input matrix for model folders: each row breaks one thing in a copy of kjv-tiny (the config, the graph,
/// the tokenizer files) and expects <see cref="ModelFormatException"/> naming the problem; afterwards the real model
/// still loads and generates, so a failed load leaves nothing behind.
/// </summary>
public sealed class ModelFolderMatrixTests : IDisposable
{
    private static readonly string Source = TestPaths.RepoModel("kjv-tiny");
    private readonly string _temp = Directory.CreateTempSubdirectory("onnxlm-folder-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    public static TheoryData<string, string> Cases => new()
    {
        { "missing folder", "does not exist" },
        { "empty folder", "genai_config.json" },
        { "a file instead of a folder", "not a folder" },
        { "genai_config.json not JSON", "not valid JSON" },
        { "genai_config.json empty", "not valid JSON" },
        { "genai_config.json an array", "model" },
        { "genai_config.json without model", "model" },
        { "context_length a string", "context_length" },
        { "context_length negative", "context_length" },
        { "context_length absurd", "context_length" },
        { "vocab_size zero", "vocab_size" },
        { "vocab_size disagrees with the graph", "4095" },
        { "num_hidden_layers disagrees", "3 layers" },
        { "num_hidden_layers absurd", "num_hidden_layers" },
        { "num_key_value_heads disagrees", "key" },
        { "head_size disagrees", "head" },
        { "decoder file missing", "decoder.onnx" },
        { "decoder file outside the folder", "outside" },
        { "decoder file an absolute path", "outside" },
        { "eos_token_id beyond the vocabulary", "eos_token_id" },
        { "bos_token_id negative", "bos_token_id" },
        { "model.onnx empty", "model.onnx" },
        { "model.onnx truncated", "model.onnx" },
        { "model.onnx random bytes", "model.onnx" },
        { "model.onnx a folder", "model.onnx" },
        { "input name not in the graph", "ids_renamed" },
        { "logits name not in the graph", "scores_renamed" },
        { "tokenizer.json not JSON", "tokenizer.json" },
        { "tokenizer.json unknown model type", "Mamba" },
        { "tokenizer_config.json not JSON", "tokenizer_config.json" },
        { "config.json vocab_size a string", "vocab_size" },
        { "model type a number", "type" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task BrokenFoldersAreModelFormatErrorsNamingTheProblem(string name, string named)
    {
        var path = Prepare(name);
        var e = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(path));
        Assert.Contains(named, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", e.Message); // a message, not a stack trace

        // Nothing was left half-made: the real model loads and runs.
        using var model = LanguageModel.Load(Source);
        Assert.NotEmpty((await model.GenerateAsync("In the beginning", new GenerationOptions { MaxNewTokens = 2 })).TokenIds);
    }

    [SharedModelTheory("tiny-llama-fp16")]
    [InlineData("missing")]
    [InlineData("short")]
    public void MissingOrShortExternalWeightsAreModelFormatErrors(string what)
    {
        var source = TestPaths.SharedModel("tiny-llama-fp16");
        foreach (var file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(_temp, Path.GetFileName(file)));
        var data = Path.Combine(_temp, "model.onnx.data");
        if (what == "missing") File.Delete(data);
        else File.WriteAllBytes(data, File.ReadAllBytes(data)[..1000]);
        var e = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(_temp));
        Assert.Contains("model.onnx", e.Message);
    }

    /// <summary>
    /// A model file that is a FIFO blocked the load for ever (open waits for a writer); one linked to /dev/zero ran out
    /// of memory after 11 s. Both are refused before they are opened; a link to a regular file still loads (every file
    /// of these copies is one).
    /// </summary>
    [SkippableTheory]
    [InlineData("genai_config.json", "/dev/zero")]
    [InlineData("tokenizer.json", "/dev/zero")]
    [InlineData("tokenizer_config.json", "/dev/zero")]
    [InlineData("model.onnx", "fifo")]
    [InlineData("genai_config.json", "fifo")]
    [InlineData("tokenizer.json", "fifo")]
    public async Task SpecialFilesAreRefusedWithoutBlocking(string file, string kind)
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "FIFOs and /dev/zero are checked on Linux");
        var folder = LinkedCopy();
        var target = Path.Combine(folder, file);
        File.Delete(target);
        if (kind == "fifo")
        {
            using var mkfifo = System.Diagnostics.Process.Start("mkfifo", target);
            mkfifo.WaitForExit();
        }
        else
        {
            File.CreateSymbolicLink(target, kind);
        }

        // The deadline turns a blocked load into a failure (the blocked thread itself cannot be freed).
        var load = Task.Factory.StartNew(() => LanguageModel.Load(folder), TaskCreationOptions.LongRunning);
        var e = await Assert.ThrowsAsync<ModelFormatException>(() => load.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains(file, e.Message);
        Assert.Contains(kind == "fifo" ? "FIFO" : "character device", e.Message);
        Assert.Contains("not a regular file", e.Message);
    }

    [Theory]
    [InlineData("genai_config.json", 64L << 20)]
    [InlineData("tokenizer_config.json", 64L << 20)]
    [InlineData("tokenizer.json", 512L << 20)]
    [InlineData("model.onnx", 2L << 30)]
    public void FilesOverTheirLimitAreRefusedUnread(string file, long limit)
    {
        var folder = LinkedCopy();
        var target = Path.Combine(folder, file);
        File.Delete(target);
        using (var sparse = File.Create(target))
        {
            sparse.SetLength(limit + 1); // a sparse file: no disk, no time
        }

        // The tokenizer's files are read after the graph is loaded (seconds on a busy machine): time their own reader.
        Func<object> load = file.StartsWith("tokenizer", StringComparison.Ordinal) ? () => TextTokenizer.FromFolder(folder) : () => LanguageModel.Load(folder);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<ModelFormatException>(load);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), $"took {watch.Elapsed}");
        Assert.Contains(file, e.Message);
        Assert.Contains($"{limit:N0} bytes", e.Message);
    }

    /// <summary>A folder of symbolic links (or copies) to kjv-tiny's files.</summary>
    private string LinkedCopy()
    {
        var folder = Path.Combine(_temp, "model");
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(Source)) Link(file, Path.Combine(folder, Path.GetFileName(file)));
        return folder;
    }

    /// <summary>A copy of kjv-tiny with one thing broken; returns the path to load.</summary>
    private string Prepare(string name)
    {
        var folder = Path.Combine(_temp, "model");
        switch (name)
        {
            case "missing folder":
                return Path.Combine(_temp, "nope");
            case "empty folder":
                Directory.CreateDirectory(folder);
                return folder;
            case "a file instead of a folder":
                File.WriteAllText(folder, "x");
                return folder;
        }

        LinkedCopy();
        var genai = Path.Combine(folder, "genai_config.json");
        void Config(Action<JsonObject> edit)
        {
            var config = JsonNode.Parse(File.ReadAllText(genai))!.AsObject();
            edit(config["model"]!.AsObject());
            Replace(genai, config.ToJsonString());
        }

        var graph = Path.Combine(folder, "model.onnx");
        switch (name)
        {
            case "genai_config.json not JSON": Replace(genai, "{ \"model\": { \"type\": "); break;
            case "genai_config.json empty": Replace(genai, ""); break;
            case "genai_config.json an array": Replace(genai, "[1, 2]"); break;
            case "genai_config.json without model": Replace(genai, "{\"search\": {}}"); break;
            case "context_length a string": Config(m => m["context_length"] = "long"); break;
            case "context_length negative": Config(m => m["context_length"] = -5); break;
            case "context_length absurd": Config(m => m["context_length"] = 1_000_000_000_000L); break;
            case "vocab_size zero": Config(m => m["vocab_size"] = 0); break;
            case "vocab_size disagrees with the graph": Config(m => m["vocab_size"] = 4095); break;
            case "num_hidden_layers disagrees": Config(m => m["decoder"]!["num_hidden_layers"] = 3); break;
            case "num_hidden_layers absurd": Config(m => m["decoder"]!["num_hidden_layers"] = 2_000_000_000); break;
            case "num_key_value_heads disagrees": Config(m => m["decoder"]!["num_key_value_heads"] = 5); break;
            case "head_size disagrees": Config(m => m["decoder"]!["head_size"] = 64); break;
            case "decoder file missing": Config(m => m["decoder"]!["filename"] = "decoder.onnx"); break;
            case "decoder file outside the folder":
                File.Copy(Source + "/model.onnx", Path.Combine(_temp, "elsewhere.onnx"));
                Config(m => m["decoder"]!["filename"] = "../elsewhere.onnx");
                break;
            case "decoder file an absolute path": Config(m => m["decoder"]!["filename"] = Path.GetFullPath(Path.Combine(Source, "model.onnx"))); break;
            case "eos_token_id beyond the vocabulary": Config(m => m["eos_token_id"] = 99_999); break;
            case "bos_token_id negative": Config(m => m["bos_token_id"] = -3); break;
            case "model.onnx empty": Replace(graph, ""); break;
            case "model.onnx truncated": Replace(graph, File.ReadAllBytes(Path.Combine(Source, "model.onnx"))[..(int)(new FileInfo(Path.Combine(Source, "model.onnx")).Length / 2)]); break;
            case "model.onnx random bytes": Replace(graph, Enumerable.Range(0, 4096).Select(i => (byte)(i * 7919 % 251)).ToArray()); break;
            case "model.onnx a folder": File.Delete(graph); Directory.CreateDirectory(graph); break;
            case "input name not in the graph": Config(m => m["decoder"]!["inputs"]!["input_ids"] = "ids_renamed"); break;
            case "logits name not in the graph": Config(m => m["decoder"]!["outputs"]!["logits"] = "scores_renamed"); break;
            case "tokenizer.json not JSON": Replace(Path.Combine(folder, "tokenizer.json"), "{\"model\": "); break;
            case "tokenizer.json unknown model type":
            {
                var tokenizer = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer.json")))!.AsObject();
                tokenizer["model"]!["type"] = "Mamba";
                Replace(Path.Combine(folder, "tokenizer.json"), tokenizer.ToJsonString());
                break;
            }

            case "tokenizer_config.json not JSON": Replace(Path.Combine(folder, "tokenizer_config.json"), "{{"); break;
            case "config.json vocab_size a string":
                File.Delete(genai);
                Replace(Path.Combine(folder, "config.json"), "{\"model_type\": \"llama\", \"vocab_size\": \"4096\"}");
                break;
            case "model type a number": Config(m => m["type"] = 42); break;
            default: throw new ArgumentException($"no such case: {name}");
        }

        return folder;
    }

    /// <summary>Links a file into the copy (a symbolic link where the system allows one, else a copy): the 20 MB graph is shared.</summary>
    private static void Link(string source, string target)
    {
        try
        {
            File.CreateSymbolicLink(target, source);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            File.Copy(source, target);
        }
    }

    /// <summary>Replaces a (possibly linked) file with new content without touching the original.</summary>
    private static void Replace(string path, string text) => Replace(path, Encoding.UTF8.GetBytes(text));

    private static void Replace(string path, byte[] bytes)
    {
        File.Delete(path);
        File.WriteAllBytes(path, bytes);
    }
}
