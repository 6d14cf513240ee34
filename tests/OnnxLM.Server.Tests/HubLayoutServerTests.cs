using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using OnnxLM.Server;

namespace OnnxLM.Server.Tests;

/// <summary>
/// The server loads through Hosting's options, so <c>Dtype</c> and <c>Variant</c> reach it: kjv-tiny arranged in the
/// transformers.js layout (its graph, with float16-stored weights, as <c>onnx/model_fp16.onnx</c>) and as a GenAI hub
/// variant answers /v1/completions exactly as the library answers on the plain folder.
/// </summary>
public sealed class HubLayoutServerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("onnxlm-server-layouts-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task CompletionsFromATransformersJsFolderAndAGenAIHubVariant()
    {
        var repo = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(repo, "OnnxLM.sln"))) repo = Path.GetDirectoryName(repo) ?? throw new InvalidOperationException("OnnxLM.sln not found");
        var kjv = Path.Combine(repo, "models", "kjv-tiny");
        var transformersJs = Path.Combine(_root, "onnx-community");
        Directory.CreateDirectory(Path.Combine(transformersJs, "onnx"));
        foreach (var name in new[] { "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json" })
        {
            File.Copy(Path.Combine(kjv, name), Path.Combine(transformersJs, name));
        }

        File.Copy(Path.Combine(kjv, "model.onnx"), Path.Combine(transformersJs, "onnx", "model_fp16.onnx"));
        var hub = Path.Combine(_root, "genai-hub");
        foreach (var variant in new[] { Path.Combine("cpu_and_mobile", "cpu-fp16"), Path.Combine("cuda", "cuda-fp16") })
        {
            var folder = Directory.CreateDirectory(Path.Combine(hub, variant)).FullName;
            foreach (var file in Directory.GetFiles(kjv)) File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }

        string expected;
        using (var plain = LanguageModel.Load(kjv, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu }))
        {
            expected = (await plain.GenerateAsync("And God said", new GenerationOptions { MaxNewTokens = 12, Temperature = 0 })).Text;
        }

        foreach (var (folder, choose, loaded) in new (string, Action<OnnxLM.Hosting.OnnxLMOptions>, string)[]
        {
            (transformersJs, o => o.Dtype = "fp16", "dtype fp16"),
            (hub, o => o.Variant = "cuda/cuda-fp16", "variant cuda/cuda-fp16"), // not the CPU's default, cpu_and_mobile/cpu-fp16
        })
        {
            await using var app = OnnxLMServer.Create(folder, "kjv", "http://127.0.0.1:0", null, o =>
            {
                o.ExecutionProvider = ExecutionProvider.Cpu;
                choose(o);
            });
            await app.StartAsync();
            var info = app.Services.GetRequiredKeyedService<LanguageModel>("kjv").Info; // the server's model, by its served name
            Assert.Equal(loaded, info.Dtype is { } d ? "dtype " + d : "variant " + info.Variant);
            using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(60) };
            using var response = await http.PostAsJsonAsync("/v1/completions", new { model = "kjv", prompt = "And God said", max_tokens = 12, temperature = 0 });
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.True(response.IsSuccessStatusCode, body.ToString());
            Assert.Equal(expected, body.GetProperty("choices")[0].GetProperty("text").GetString());
            await app.StopAsync();
        }

        await using var wrong = OnnxLMServer.Create(transformersJs, "kjv", "http://127.0.0.1:0", null, o =>
        {
            o.ExecutionProvider = ExecutionProvider.Cpu;
            o.Dtype = "bnb4";
        });
        var e = await Assert.ThrowsAsync<ModelFormatException>(() => wrong.StartAsync());
        Assert.Contains("no bnb4 graph (onnx/model_bnb4.onnx). It has: fp16 (onnx/model_fp16.onnx)", e.Message);
    }
}
