using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using OnnxLM.Cli;

namespace OnnxLM.Tests;

/// <summary>
/// Model folders as the Hub publishes them (<see cref="HubLayoutFixture"/>): each dtype of a transformers.js folder and each
/// variant of a GenAI hub folder loads, says what it loaded, and generates exactly what the same weights do in the plain
/// layout; defaults follow the documented orders; missing or unknown choices fail listing what the folder has; the extra
/// inputs exporters add change no logit, and <c>num_logits_to_keep</c> really limits the rows computed.
/// </summary>
public sealed class HubLayoutTests(HubLayoutFixture layouts) : IClassFixture<HubLayoutFixture>
{
    private const string Prompt = "And God said, Let there be light";
    private static readonly GenerationOptions Greedy = new() { MaxNewTokens = 24, Temperature = 0, StopTokenIds = [] };

    private static LanguageModelOptions Cpu(string? dtype = null, string? variant = null) =>
        new() { ExecutionProvider = ExecutionProvider.Cpu, Dtype = dtype, Variant = variant };

    [Theory]
    [InlineData("fp32")]
    [InlineData("fp16")]
    [InlineData("q4")]
    [InlineData("q8")]
    public async Task EachDtypeLoadsSaysSoAndGeneratesWhatThePlainLayoutDoes(string dtype)
    {
        using var model = LanguageModel.Load(layouts.TransformersJs, Cpu(dtype));
        using var plain = LanguageModel.Load(layouts.Plain(dtype), Cpu());
        Assert.Equal(ModelFolderLayout.TransformersJs, model.Info.FolderLayout);
        Assert.Equal(dtype, model.Info.Dtype);
        Assert.Null(model.Info.Variant);
        Assert.Equal(Path.Combine(layouts.TransformersJs, "onnx", "model" + HubLayoutFixture.Suffix(dtype) + ".onnx"), model.Info.GraphPath);
        Assert.Equal(["num_logits_to_keep", "cache_position", "token_type_ids"], model.Info.ExtraInputs);
        Assert.Empty(plain.Info.ExtraInputs);
        Assert.Null(plain.Info.Dtype);
        Assert.Equal(plain.Info.WeightType, model.Info.WeightType);

        var expected = await plain.GenerateAsync(Prompt, Greedy);
        var actual = await model.GenerateAsync(Prompt, Greedy);
        Assert.Equal(24, expected.TokenIds.Count);
        Assert.Equal(expected.TokenIds, actual.TokenIds);
        Assert.Equal(expected.Text, actual.Text);
    }

    [Fact]
    public void Fp32WeightsAreSplitAsTransformersJsNamesTheChunks()
    {
        var graphs = Path.Combine(layouts.TransformersJs, "onnx");
        var data = Directory.GetFiles(graphs, "model.onnx_data*").Select(f => Path.GetFileName(f)!).OrderBy(f => f.Length).ThenBy(f => f, StringComparer.Ordinal).ToArray();
        Assert.True(data.Length >= 3, string.Join(", ", data));
        Assert.Equal(["model.onnx_data", .. Enumerable.Range(1, data.Length - 1).Select(i => $"model.onnx_data_{i}")], (IEnumerable<string>)data);
        Assert.True(new FileInfo(Path.Combine(graphs, "model.onnx")).Length < 100_000, "the fp32 graph keeps its weights outside");
        // A tensor is never split: a file passes 4 MiB only when it holds one larger tensor alone (the 4096 × 320 fp32 embedding).
        Assert.All(data, f => Assert.InRange(new FileInfo(Path.Combine(graphs, f)).Length, 1, Math.Max(4 << 20, 4096 * 320 * 4)));
        foreach (var bad in new[] { "../model.onnx_data", "sub/model.onnx_data", "", ".." })
        {
            Assert.Throws<ArgumentException>(() => new OnnxLM.ModelBuilder.ModelBuilderOptions { ExternalDataFileName = bad });
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => new OnnxLM.ModelBuilder.ModelBuilderOptions { ExternalDataChunkBytes = -1 });
    }

    [Fact]
    public async Task ExtraInputsChangeNoLogitAgainstTheSameGraphWithoutThem()
    {
        using var model = LanguageModel.Load(layouts.TransformersJs, Cpu("fp32"));
        using var plain = LanguageModel.Load(layouts.Plain("fp32"), Cpu());
        var ids = model.Encode(Prompt);

        // A prefill (one row of logits kept), then single steps, through the session.
        using var a = model.CreateSession();
        using var b = plain.CreateSession();
        a.Append(ids);
        b.Append(ids);
        for (var step = 0; step < 6; step++)
        {
            AssertClose(b.NextTokenLogits, a.NextTokenLogits, $"step {step}");
            var next = ArgMax(b.NextTokenLogits);
            a.Append(next);
            b.Append(next);
        }

        // Scoring reads every row's logits (0 kept rows means all of them).
        var expected = await plain.ScoreAsync(Prompt, " and there was light.");
        var actual = await model.ScoreAsync(Prompt, " and there was light.");
        Assert.Equal(expected.Tokens.Count, actual.Tokens.Count);
        for (var i = 0; i < expected.Tokens.Count; i++)
        {
            Assert.Equal(expected.Tokens[i].Id, actual.Tokens[i].Id);
            Assert.True(Math.Abs(expected.Tokens[i].LogProb - actual.Tokens[i].LogProb) <= 1e-5, $"token {i}: {expected.Tokens[i].LogProb} vs {actual.Tokens[i].LogProb}");
        }

        // Batched rows of different lengths (padding, a shared cache_position): the same results as alone.
        var prompts = new[] { Prompt, "In the beginning", "And the LORD spake unto Moses, saying" };
        var together = await Task.WhenAll(prompts.Select(p => model.GenerateAsync(p, Greedy)));
        for (var i = 0; i < prompts.Length; i++)
        {
            Assert.Equal((await plain.GenerateAsync(prompts[i], Greedy)).TokenIds, together[i].TokenIds);
        }
    }

    [Fact]
    public void TheDevicePathReadsTheKeptRowsToo()
    {
        // The device path (cache and logits left as ONNX Runtime's values, rows sliced where they live) run on the CPU.
        using var model = LanguageModel.Load(layouts.TransformersJs, Cpu("fp32"));
        using var plain = LanguageModel.Load(layouts.Plain("fp32"), Cpu());
        model.Runtime.Graph.UseHostCache = false;
        var ids = model.Encode(Prompt);
        using var a = model.CreateSession();
        using var b = plain.CreateSession();
        a.Append(ids);
        b.Append(ids);
        for (var step = 0; step < 4; step++)
        {
            AssertClose(b.NextTokenLogits, a.NextTokenLogits, $"step {step}");
            var next = ArgMax(b.NextTokenLogits);
            a.Append([next, 7, 9]); // several tokens after a past: three rows run, one kept
            b.Append([next, 7, 9]);
        }
    }

    [CudaFact]
    public async Task OnCudaTheDefaultsAreFp16AndTheCudaVariant()
    {
        var cuda = new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cuda };
        using var model = LanguageModel.Load(layouts.TransformersJs, cuda);
        using var plain = LanguageModel.Load(layouts.Plain("fp16"), cuda);
        Assert.Equal("fp16", model.Info.Dtype);
        Assert.Equal((await plain.GenerateAsync(Prompt, Greedy)).TokenIds, (await model.GenerateAsync(Prompt, Greedy)).TokenIds);
        using var hub = LanguageModel.Load(layouts.GenAIHub, cuda);
        Assert.Equal("cuda/cuda-fp16", hub.Info.Variant);
        Assert.Equal((await plain.GenerateAsync(Prompt, Greedy)).TokenIds, (await hub.GenerateAsync(Prompt, Greedy)).TokenIds);
    }

    [Fact]
    public void NumLogitsToKeepIsFedAndTheGraphComputesOnlyTheRowsAskedFor()
    {
        using var model = LanguageModel.Load(layouts.TransformersJs, Cpu("fp32"));
        var sig = model.Runtime.Graph.Signature;
        Assert.Equal("num_logits_to_keep", sig.LogitsToKeep);
        int[] ids = [5, 17, 300, 42, 9];
        float[] Run(int keep, out long[] shape)
        {
            using var feed = new GraphFeed(model.Runtime.Graph);
            feed.Begin(1, ids.Length, 0);
            feed.Row(0, ids, 0);
            Assert.Equal(keep == 0 ? ids.Length : keep, keep == 0 ? ids.Length : feed.KeepLastLogits(keep));
            var names = new List<string>();
            var values = new List<OrtValue>();
            try
            {
                feed.AddTo(names, values);
                Assert.Equal(keep, values[names.IndexOf("num_logits_to_keep")].GetTensorDataAsSpan<long>()[0]);
                Assert.Equal(new long[] { 0, 1, 2, 3, 4 }, values[names.IndexOf("cache_position")].GetTensorDataAsSpan<long>().ToArray());
                Assert.All(values[names.IndexOf("token_type_ids")].GetTensorDataAsSpan<long>().ToArray(), t => Assert.Equal(0, t));
            }
            finally
            {
                foreach (var value in values) value.Dispose();
            }

            using var run = new RunOptions();
            using var outputs = feed.Run(model.Runtime.Graph.Session, run, null, [sig.Logits], CancellationToken.None);
            shape = outputs[0].GetTensorTypeAndShape().Shape;
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }

        var all = Run(0, out var allShape);
        var last = Run(1, out var lastShape);
        var vocab = model.Info.VocabularySize;
        Assert.Equal(new long[] { 1, ids.Length, vocab }, allShape);
        Assert.Equal(new long[] { 1, 1, vocab }, lastShape);
        AssertClose(all.AsSpan((ids.Length - 1) * vocab, vocab), last, "the kept row is the last row");
        var lastTwo = Run(2, out var twoShape);
        Assert.Equal(new long[] { 1, 2, vocab }, twoShape);
        AssertClose(all.AsSpan((ids.Length - 2) * vocab, 2 * vocab), lastTwo, "the last two rows");
    }

    [Fact]
    public void TheLogitsCountHasADefaultSoARuntimeThatDoesNotFeedItGetsEveryRow()
    {
        // OnnxLM's converter writes num_logits_to_keep with a default of 0 (an initializer of the same name): ONNX Runtime
        // does not list it among the inputs a run must feed, which is all ONNX Runtime GenAI looks at.
        using var model = LanguageModel.Load(layouts.TransformersJs, Cpu("fp32"));
        var session = model.Runtime.Graph.Session;
        Assert.DoesNotContain("num_logits_to_keep", session.InputMetadata.Keys);
        Assert.Contains("num_logits_to_keep", session.OverridableInitializerMetadata.Keys);

        int[] ids = [5, 17, 300, 42, 9];
        var sig = model.Runtime.Graph.Signature;
        using var feed = new GraphFeed(model.Runtime.Graph);
        feed.Begin(1, ids.Length, 0);
        feed.Row(0, ids, 0);
        var names = new List<string>();
        var values = new List<OrtValue>();
        try
        {
            feed.AddTo(names, values);
            var keep = names.IndexOf("num_logits_to_keep");
            values[keep].Dispose();
            names.RemoveAt(keep);
            values.RemoveAt(keep);
            foreach (var past in sig.PastNames)
            {
                names.Add(past);
                values.Add(OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, sig.KvType, [1, sig.KeyValueHeadCount, 0, sig.HeadSize]));
            }

            using var outputs = session.Run(new RunOptions(), names, values, [sig.Logits]);
            Assert.Equal(new long[] { 1, ids.Length, model.Info.VocabularySize }, outputs[0].GetTensorTypeAndShape().Shape);
            using var prefill = model.CreateSession(ids.Length);
            prefill.Append(ids);
            var vocab = model.Info.VocabularySize;
            AssertClose(outputs[0].GetTensorDataAsSpan<float>().Slice((ids.Length - 1) * vocab, vocab), prefill.NextTokenLogits.ToArray(),
                "the last row of an unfed run equals OnnxLM's prefill, which feeds 1");
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
    }

    [Fact]
    public void APromptJoiningABatchAloneGetsOnlyItsLastRowOfLogits()
    {
        // BatchedCache.Add with one prompt asks the graph for its last position's logits only: the same as a session's prefill.
        using var model = LanguageModel.Load(layouts.TransformersJs, Cpu("fp32"));
        int[] first = [5, 17, 300, 42, 9], second = [7, 8, 9];
        using var cache = new BatchedCache(model.Runtime);
        cache.Add(first, 1, CancellationToken.None);
        cache.Add(second, 2, CancellationToken.None);
        cache.Add([first, second], [1, 1], CancellationToken.None); // two prompts: every row's logits, read at each one's end
        int[][] rows = [first, second, second, first, second];
        for (var row = 0; row < rows.Length; row++)
        {
            using var session = model.CreateSession(8);
            session.Append(rows[row]);
            AssertClose(session.NextTokenLogits, cache.Logits(row), $"row {row}");
        }
    }

    [Fact]
    public void WithoutADtypeTheDocumentedOrderPicks()
    {
        using (var model = LanguageModel.Load(layouts.TransformersJs, Cpu()))
        {
            Assert.Equal("q4", model.Info.Dtype); // q4 is first in CpuDtypeOrder, and the folder has it
        }

        Assert.Equal("q4", LanguageModelOptions.CpuDtypeOrder[0]);
        var graphs = TransformersJsGraphs.Find(layouts.TransformersJs);
        Assert.Equal(["fp32", "fp16", "q8", "q4"], graphs.Select(g => g.Dtype));
        Assert.Equal("fp16", TransformersJsGraphs.Choose(layouts.TransformersJs, graphs, null, LanguageModelOptions.CudaDtypeOrder).Dtype);

        // Folders holding fewer files (the graphs' names are all the choice reads): the first of the order that is present.
        string Folder(params string[] files)
        {
            var folder = layouts.NewFolder("order");
            File.WriteAllText(Path.Combine(folder, "config.json"), "{}");
            Directory.CreateDirectory(Path.Combine(folder, "onnx"));
            foreach (var file in files) File.WriteAllBytes(Path.Combine(folder, "onnx", file), [0]);
            return folder;
        }

        string Pick(string folder, IReadOnlyList<string> order) => TransformersJsGraphs.Choose(folder, TransformersJsGraphs.Find(folder), null, order).Dtype;
        var noQ4 = Folder("model.onnx", "model_fp16.onnx", "model_uint8.onnx", "model_int8.onnx");
        Assert.Equal("int8", Pick(noQ4, LanguageModelOptions.CpuDtypeOrder));
        Assert.Equal("fp16", Pick(noQ4, LanguageModelOptions.CudaDtypeOrder));
        var halfOnly = Folder("model_q4f16.onnx", "model_fp16.onnx", "model_bnb4.onnx");
        Assert.Equal("fp16", Pick(halfOnly, LanguageModelOptions.CpuDtypeOrder));
        Assert.Equal("q4f16", Pick(Folder("model_q4f16.onnx", "model_bnb4.onnx"), LanguageModelOptions.CudaDtypeOrder));
        var older = Folder("decoder_model_merged.onnx", "decoder_model_merged_quantized.onnx");
        Assert.Equal("q8", Pick(older, LanguageModelOptions.CpuDtypeOrder));
        Assert.EndsWith("decoder_model_merged_quantized.onnx", TransformersJsGraphs.Find(older).Single(g => g.Dtype == "q8").Path);
    }

    [Fact]
    public void AMissingOrUnknownDtypeFailsListingTheDtypesTheFolderHas()
    {
        var missing = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(layouts.TransformersJs, Cpu("q4f16")));
        Assert.Contains("no q4f16 graph (onnx/model_q4f16.onnx)", missing.Message);
        Assert.Contains("fp32 (onnx/model.onnx), fp16 (onnx/model_fp16.onnx), q8 (onnx/model_quantized.onnx), q4 (onnx/model_q4.onnx)", missing.Message);

        var unknown = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(layouts.TransformersJs, Cpu("int4")));
        Assert.Contains("Unknown dtype 'int4'", unknown.Message);
        Assert.Contains("fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4", unknown.Message);
        Assert.Contains("q4 (onnx/model_q4.onnx)", unknown.Message);

        // A choice the folder's layout does not have fails instead of being ignored.
        var plain = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(layouts.Plain("fp32"), Cpu("q4")));
        Assert.Contains("Dtype 'q4' was given", plain.Message);
        Assert.Contains("ONNX Runtime GenAI layout", plain.Message);
        var variant = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(layouts.TransformersJs, Cpu(variant: "cuda/cuda-fp16")));
        Assert.Contains("transformers.js layout", variant.Message);
        Assert.Throws<ArgumentException>(() => new LanguageModelOptions { Dtype = " " });
    }

    [Fact]
    public async Task GenAIHubVariantsLoadByProviderByPathOrByName()
    {
        using var plainQ4 = LanguageModel.Load(layouts.Plain("q4"), Cpu());
        using var plainFp16 = LanguageModel.Load(layouts.Plain("fp16"), Cpu());
        var q4Tokens = (await plainQ4.GenerateAsync(Prompt, Greedy)).TokenIds;
        var fp16Tokens = (await plainFp16.GenerateAsync(Prompt, Greedy)).TokenIds;

        using (var model = LanguageModel.Load(layouts.GenAIHub, Cpu()))
        {
            Assert.Equal(ModelFolderLayout.OnnxRuntimeGenAIVariants, model.Info.FolderLayout);
            Assert.Equal("cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4", model.Info.Variant);
            Assert.Null(model.Info.Dtype);
            Assert.EndsWith(Path.Combine("cpu-int4-rtn-block-32-acc-level-4", "kjv-tiny-cpu-int4-rtn-block-32-acc-level-4.onnx"), model.Info.GraphPath);
            Assert.Equal("int4", model.Info.WeightType);
            Assert.Equal(q4Tokens, (await model.GenerateAsync(Prompt, Greedy)).TokenIds);
        }

        foreach (var name in new[] { "cuda/cuda-fp16", "cuda-fp16", "cuda\\cuda-fp16/" })
        {
            using var model = LanguageModel.Load(layouts.GenAIHub, Cpu(variant: name));
            Assert.Equal("cuda/cuda-fp16", model.Info.Variant);
            Assert.Equal("float16", model.Info.WeightType);
            Assert.Equal(fp16Tokens, (await model.GenerateAsync(Prompt, Greedy)).TokenIds);
        }

        var variants = GenAIVariants.Find(layouts.GenAIHub);
        Assert.Equal(["cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4", "cuda/cuda-fp16"], variants);
        Assert.Equal("cuda/cuda-fp16", GenAIVariants.Choose(layouts.GenAIHub, variants, null, cuda: true, fallBackToCpu: false));

        var missing = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(layouts.GenAIHub, Cpu(variant: "cuda-int4-rtn-block-32")));
        Assert.Contains("has no variant 'cuda-int4-rtn-block-32'", missing.Message);
        Assert.Contains("cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4, cuda/cuda-fp16", missing.Message);
        var dtype = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(layouts.GenAIHub, Cpu("q4")));
        Assert.Contains("GenAI hub layout", dtype.Message);
    }

    [Fact]
    public void VariantChoiceFailsListingWhenNoneSuitsOrANameIsAmbiguous()
    {
        string[] cudaOnly = ["cuda/cuda-fp16", "cuda/cuda-int4-rtn-block-32"];
        var none = Assert.Throws<ModelFormatException>(() => GenAIVariants.Choose("hub", cudaOnly, null, cuda: false, fallBackToCpu: false));
        Assert.Contains("none is a CPU (cpu) variant", none.Message);
        Assert.Contains("cuda/cuda-fp16, cuda/cuda-int4-rtn-block-32", none.Message);
        Assert.Equal("cuda/cuda-fp16", GenAIVariants.Choose("hub", cudaOnly, null, cuda: true, fallBackToCpu: false));
        string[] cpuOnly = ["cpu_and_mobile/cpu-int4-rtn-block-32", "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"];
        Assert.Equal("cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4", GenAIVariants.Choose("hub", cpuOnly, null, cuda: false, fallBackToCpu: false));
        Assert.Equal("cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4", GenAIVariants.Choose("hub", cpuOnly, null, cuda: true, fallBackToCpu: true));
        Assert.Throws<ModelFormatException>(() => GenAIVariants.Choose("hub", cpuOnly, null, cuda: true, fallBackToCpu: false));
        var ambiguous = Assert.Throws<ModelFormatException>(() => GenAIVariants.Choose("hub", ["a/fp16", "b/fp16"], "fp16", cuda: false, fallBackToCpu: false));
        Assert.Contains("ambiguous", ambiguous.Message);
        Assert.Contains("a/fp16, b/fp16", ambiguous.Message);
    }

    [Fact]
    public async Task TheCliTakesDtypeAndVariant()
    {
        using var plain = LanguageModel.Load(layouts.Plain("q4"), Cpu());
        var expected = (await plain.GenerateAsync("In the beginning", new GenerationOptions { MaxNewTokens = 12, Temperature = 0 })).Text;
        var (code, output, error) = await RunCliAsync("generate", "In the beginning", "--model", layouts.TransformersJs, "--dtype", "q4",
            "--provider", "cpu", "--temperature", "0", "--max-new-tokens", "12", "--json");
        Assert.True(code == 0, error);
        Assert.Equal(expected, JsonDocument.Parse(output).RootElement.GetProperty("text").GetString());

        (code, output, error) = await RunCliAsync("generate", "In the beginning", "--model", layouts.GenAIHub, "--variant", "cpu-int4-rtn-block-32-acc-level-4",
            "--provider", "cpu", "--temperature", "0", "--max-new-tokens", "12", "--json");
        Assert.True(code == 0, error);
        Assert.Equal(expected, JsonDocument.Parse(output).RootElement.GetProperty("text").GetString());

        (code, output, error) = await RunCliAsync("inspect", "--model", layouts.TransformersJs, "--dtype", "bnb4", "--provider", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("no bnb4 graph", error);
        Assert.Contains("q4 (onnx/model_q4.onnx)", error);
    }

    private static async Task<(int Code, string Output, string Error)> RunCliAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.RunAsync(args, output, error, new StringReader(""));
        return (code, output.ToString(), error.ToString());
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5, $"{what}: logit {i} is {actual[i]}, expected {expected[i]}");
        }
    }
}

/// <summary>The third-party graphs in ../shared/models re-arranged as the Hub's layouts hold them load and generate as they do in place.</summary>
public sealed class SharedModelHubLayoutTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("onnxlm-shared-layouts-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static readonly GenerationOptions Greedy = new() { MaxNewTokens = 16, Temperature = 0, StopTokenIds = [] };

    [SharedModelFact("torch-llama-fp32")]
    public async Task TorchLlamaInTheTransformersJsLayoutLoadsItsFp32Graph()
    {
        var source = TestPaths.SharedModel("torch-llama-fp32");
        var folder = Path.Combine(_root, "torch-llama");
        Directory.CreateDirectory(Path.Combine(folder, "onnx"));
        foreach (var file in Directory.GetFiles(source).Where(f => Path.GetFileName(f) is not ("model.onnx" or "SOURCE.md")))
        {
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }

        File.Copy(Path.Combine(source, "model.onnx"), Path.Combine(folder, "onnx", "model.onnx"));
        var cpu = new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu };
        using var direct = LanguageModel.Load(source, cpu);
        using var arranged = LanguageModel.Load(folder, cpu);
        Assert.Equal((ModelFolderLayout.TransformersJs, "fp32"), (arranged.Info.FolderLayout, arranged.Info.Dtype));
        Assert.Equal(ModelFolderLayout.HuggingFaceOptimum, direct.Info.FolderLayout);
        var ids = direct.Encode("Once upon a time");
        Assert.Equal(ids, arranged.Encode("Once upon a time"));
        Assert.Equal((await direct.GenerateAsync("Once upon a time", Greedy)).TokenIds, (await arranged.GenerateAsync("Once upon a time", Greedy)).TokenIds);
    }

    [SharedModelFact("tiny-llama-fp16", "tiny-phi3-gqa-fp16")]
    public async Task GenAIModelsAsVariantsOfAHubFolderLoadByProviderAndByName()
    {
        var hub = Path.Combine(_root, "hub");
        foreach (var (model, variant) in new[] { ("tiny-llama-fp16", "cpu_and_mobile/cpu-fp16"), ("tiny-phi3-gqa-fp16", "cuda/cuda-fp16") })
        {
            var target = Directory.CreateDirectory(Path.Combine(hub, variant)).FullName;
            foreach (var file in Directory.GetFiles(TestPaths.SharedModel(model))) File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }

        var cpu = new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu };
        foreach (var (model, variant) in new[] { ("tiny-llama-fp16", (string?)null), ("tiny-phi3-gqa-fp16", "cuda-fp16") })
        {
            using var direct = LanguageModel.Load(TestPaths.SharedModel(model), cpu);
            using var arranged = LanguageModel.Load(hub, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, Variant = variant });
            Assert.Equal(ModelFolderLayout.OnnxRuntimeGenAIVariants, arranged.Info.FolderLayout);
            Assert.Equal(variant is null ? "cpu_and_mobile/cpu-fp16" : "cuda/cuda-fp16", arranged.Info.Variant);
            int[] prompt = [1, 45, 99, 173]; // inside both vocabularies (tiny-phi3-gqa has 256 tokens)
            var expected = await direct.GenerateAsync(prompt, Greedy);
            Assert.Equal(expected.TokenIds, (await arranged.GenerateAsync(prompt, Greedy)).TokenIds);
        }
    }
}
