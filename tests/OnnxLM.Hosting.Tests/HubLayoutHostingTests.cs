using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace OnnxLM.Hosting.Tests;

/// <summary>
/// <c>OnnxLM:Dtype</c> and <c>OnnxLM:Variant</c> reach the loader: kjv-tiny arranged in the transformers.js layout (its graph,
/// whose weights are stored as float16, as <c>onnx/model_fp16.onnx</c>) and in a GenAI hub layout answer exactly as the plain
/// folder does, and a dtype the folder lacks fails the start listing the one it has.
/// </summary>
public sealed class HubLayoutHostingTests : IDisposable
{
    private static readonly AIChatMessage[] Hello = [new(ChatRole.User, "In the beginning")];
    private readonly string _root = Directory.CreateTempSubdirectory("onnxlm-hosting-layouts-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task DtypeAndVariantFromConfigurationChooseTheGraph()
    {
        var transformersJs = Path.Combine(_root, "onnx-community");
        Directory.CreateDirectory(Path.Combine(transformersJs, "onnx"));
        foreach (var name in new[] { "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json" })
        {
            File.Copy(Path.Combine(Support.KjvTiny, name), Path.Combine(transformersJs, name));
        }

        File.Copy(Path.Combine(Support.KjvTiny, "model.onnx"), Path.Combine(transformersJs, "onnx", "model_fp16.onnx"));
        var hub = Path.Combine(_root, "genai-hub");
        var variant = Directory.CreateDirectory(Path.Combine(hub, "cpu_and_mobile", "cpu-fp16")).FullName;
        foreach (var file in Directory.GetFiles(Support.KjvTiny)) File.Copy(file, Path.Combine(variant, Path.GetFileName(file)));

        string expected;
        using (var plain = await Support.StartAsync(Support.Settings()))
        {
            expected = (await plain.Services.GetRequiredService<IChatClient>().GetResponseAsync(Hello, Support.Greedy(16))).Text;
        }

        foreach (var (folder, setting, check) in new (string, string, Func<ModelInfo, bool>)[]
        {
            (transformersJs, "\"Dtype\": \"fp16\"", i => i is { Dtype: "fp16", FolderLayout: ModelFolderLayout.TransformersJs }),
            (hub, "\"Variant\": \"cpu-fp16\"", i => i is { Variant: "cpu_and_mobile/cpu-fp16", FolderLayout: ModelFolderLayout.OnnxRuntimeGenAIVariants }),
        })
        {
            using var host = await Support.StartAsync(Settings(folder, setting));
            var model = host.Services.GetRequiredService<LanguageModel>();
            Assert.True(check(model.Info), $"{folder}: {model.Info.FolderLayout}, dtype {model.Info.Dtype}, variant {model.Info.Variant}");
            var response = await host.Services.GetRequiredService<IChatClient>().GetResponseAsync(Hello, Support.Greedy(16));
            Assert.Equal(expected, response.Text);
        }

        var missing = await Assert.ThrowsAsync<ModelFormatException>(() => Support.StartAsync(Settings(transformersJs, "\"Dtype\": \"q4\"")));
        Assert.Contains("no q4 graph (onnx/model_q4.onnx). It has: fp16 (onnx/model_fp16.onnx)", missing.Message);
        var blank = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => Support.StartAsync(Settings(hub, "\"Variant\": \" \"")));
        Assert.Contains("OnnxLM:Variant must be a variant folder such as cuda/cuda-fp16, or absent (found ' ').", blank.Failures);
    }

    private static string Settings(string folder, string extra) =>
        $$"""{ "OnnxLM": { "ModelPath": {{System.Text.Json.JsonSerializer.Serialize(folder)}}, "ExecutionProvider": "Cpu", {{extra}} } }""";
}
