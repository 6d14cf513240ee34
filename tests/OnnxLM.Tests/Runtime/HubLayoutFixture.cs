using OnnxLM.ModelBuilder;

namespace OnnxLM.Tests;

/// <summary>
/// Model folders in the layouts real exporters publish, built once from the embedded kjv-tiny with the repository's own
/// builder and arranged as each exporter names things, beside plain GenAI-layout builds of the same weights to compare with:
/// <list type="bullet">
/// <item><see cref="TransformersJs"/>: transformers.js / onnx-community: <c>config.json</c>, <c>generation_config.json</c> and
/// the tokenizer at the root; <c>onnx/model.onnx</c> (fp32, its weights split into <c>model.onnx_data</c>,
/// <c>model.onnx_data_1</c>, …), <c>onnx/model_fp16.onnx</c>, <c>onnx/model_q4.onnx</c> and <c>onnx/model_quantized.onnx</c>
/// (q8); every graph takes <c>num_logits_to_keep</c>, <c>cache_position</c> and <c>token_type_ids</c> as transformers exports do.</item>
/// <item><see cref="GenAIHub"/>: an ONNX Runtime GenAI hub repository: <c>cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4/</c>
/// and <c>cuda/cuda-fp16/</c>, each a GenAI folder whose graph is named after the variant, as Microsoft's repositories name them.</item>
/// </list>
/// The builder's fp16 is fp16 weight storage computed in fp32 (it does not write fp16 activations), and its q8 is 8-bit
/// block quantization (MatMulNBits) rather than the dynamic MatMulInteger quantization transformers.js's q8 files use: the
/// file names and the loading are what is under test, and each is compared with the same weights in the plain layout.
/// </summary>
public sealed class HubLayoutFixture : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("onnxlm-layouts-").FullName;

    public HubLayoutFixture()
    {
        var kjv = TestPaths.RepoModel("kjv-tiny");
        ModelBuilderOptions Options(string dtype, bool extras) => new()
        {
            ContextLength = 256,
            Float16Weights = dtype == "fp16",
            Quantization = dtype switch { "q4" => WeightQuantization.Parse("int4"), "q8" => WeightQuantization.Parse("int8"), _ => null },
            LogitsToKeepInput = extras, CachePositionInput = extras, TokenTypeIdsInput = extras,
        };

        foreach (var dtype in Dtypes)
        {
            DecoderModelBuilder.Convert(kjv, Plain(dtype), Options(dtype, extras: false));
        }

        // transformers.js: one graph per dtype in onnx/, named by DEFAULT_DTYPE_SUFFIX_MAPPING; fp32 with external data in chunks.
        TransformersJs = Path.Combine(_root, "onnx-community-kjv-tiny");
        var graphs = Directory.CreateDirectory(Path.Combine(TransformersJs, "onnx")).FullName;
        foreach (var name in new[] { "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json" })
        {
            File.Copy(Path.Combine(kjv, name), Path.Combine(TransformersJs, name));
        }

        foreach (var dtype in Dtypes)
        {
            var stem = "model" + Suffix(dtype);
            var build = Path.Combine(_root, "build-" + dtype);
            var options = Options(dtype, extras: true);
            if (dtype == "fp32")
            {
                options.ExternalDataThreshold = 0;
                options.ExternalDataFileName = stem + ".onnx_data";
                options.ExternalDataChunkBytes = 4 << 20;
            }

            DecoderModelBuilder.Convert(kjv, build, options);
            File.Move(Path.Combine(build, "model.onnx"), Path.Combine(graphs, stem + ".onnx"));
            foreach (var data in Directory.GetFiles(build, stem + ".onnx_data*"))
            {
                File.Move(data, Path.Combine(graphs, Path.GetFileName(data)));
            }
        }

        // GenAI hub: variant folders, each a whole GenAI folder with the graph named after the variant.
        GenAIHub = Path.Combine(_root, "kjv-tiny-onnx");
        foreach (var (variant, dtype) in new[] { ("cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4", "q4"), ("cuda/cuda-fp16", "fp16") })
        {
            var folder = Directory.CreateDirectory(Path.Combine(GenAIHub, variant)).FullName;
            var graphName = "kjv-tiny-" + Path.GetFileName(variant) + ".onnx";
            foreach (var file in Directory.GetFiles(Plain(dtype)))
            {
                var name = Path.GetFileName(file) == "model.onnx" ? graphName : Path.GetFileName(file);
                File.Copy(file, Path.Combine(folder, name));
            }

            var config = Path.Combine(folder, "genai_config.json");
            File.WriteAllText(config, File.ReadAllText(config).Replace("\"model.onnx\"", $"\"{graphName}\"", StringComparison.Ordinal));
        }

        File.WriteAllText(Path.Combine(GenAIHub, "README.md"), "Variants of kjv-tiny in ONNX Runtime GenAI's hub layout.\n");
    }

    /// <summary>The dtypes built, by transformers.js's names.</summary>
    public static readonly string[] Dtypes = ["fp32", "fp16", "q4", "q8"];

    /// <summary>transformers.js's file-name suffix of a dtype (fp32 has none; q8 is "_quantized").</summary>
    public static string Suffix(string dtype) => dtype switch { "fp32" => "", "q8" => "_quantized", _ => "_" + dtype };

    /// <summary>The folder in the transformers.js layout.</summary>
    public string TransformersJs { get; }

    /// <summary>The folder in the GenAI hub layout.</summary>
    public string GenAIHub { get; }

    /// <summary>The same weights as <paramref name="dtype"/>'s graph, in the plain GenAI layout, without the extra inputs.</summary>
    public string Plain(string dtype) => Path.Combine(_root, "plain-" + dtype);

    /// <summary>A new empty folder under the fixture's root.</summary>
    public string NewFolder(string name) => Directory.CreateDirectory(Path.Combine(_root, name + "-" + Guid.NewGuid().ToString("N")[..8])).FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
