using System.Text.Json;
using System.Text.Json.Nodes;
using OnnxLM.ModelBuilder.Onnx;
using OnnxLM.ModelBuilder.SafeTensors;

namespace OnnxLM.ModelBuilder;

/// <summary>
/// Turns a Hugging Face checkpoint (config.json + safetensors + tokenizer files) into an ONNX decoder folder
/// with a KV cache in ONNX Runtime GenAI's layout: <c>model.onnx</c> (+ <c>model.onnx.data</c> when large),
/// <c>genai_config.json</c> and the tokenizer files. The folder loads in OnnxLM and in ONNX Runtime GenAI.
/// </summary>
public static class DecoderModelBuilder
{
    /// <summary>The most bytes a model.onnx may have with its weights inline: protobuf's 2 GiB limit less a margin for headers.</summary>
    private const long ProtobufLimit = int.MaxValue - (64L << 20);

    private static readonly string[] CopiedFiles =
    [
        "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
        "generation_config.json", "config.json",
    ];

    /// <summary>
    /// Converts the checkpoint in <paramref name="checkpointFolder"/> into a model folder at <paramref name="outputFolder"/>.
    /// The checkpoint is a Hugging Face folder (config.json + safetensors), or a float model folder this builder wrote
    /// earlier (config.json + model.onnx and no safetensors), whose weights are read back from the graph: that is how
    /// a quantized copy of a shipped model such as kjv-tiny is made without its training checkpoint.
    /// </summary>
    /// <exception cref="ModelFormatException">The checkpoint is missing files or tensors, or has an unsupported architecture.</exception>
    public static void Convert(string checkpointFolder, string outputFolder, ModelBuilderOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(checkpointFolder);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputFolder);
        if (!Directory.Exists(checkpointFolder))
        {
            throw new ModelFormatException($"Checkpoint folder '{checkpointFolder}' does not exist.", checkpointFolder);
        }

        var config = DecoderConfig.Load(checkpointFolder);
        IWeightSource weights = BuiltGraphWeights.IsBuiltFolder(checkpointFolder)
            ? BuiltGraphWeights.Open(checkpointFolder, config)
            : new SafeTensorsSource(SafeTensorsFile.Open(checkpointFolder));
        Build(config, weights, outputFolder, options);
        foreach (var name in CopiedFiles)
        {
            var source = Path.Combine(checkpointFolder, name);
            if (File.Exists(source))
            {
                var target = Path.Combine(outputFolder, name);
                if (File.Exists(target)) File.SetAttributes(target, FileAttributes.Normal);
                File.Copy(source, target, overwrite: true);
                File.SetAttributes(target, FileAttributes.Normal); // sources may be read-only; the copy is the user's
            }
        }
    }

    /// <summary>Writes a model folder (graph and genai_config.json, no tokenizer) from a config and weights given by Hugging Face names.</summary>
    /// <exception cref="ModelFormatException">The config cannot be built (heads, head size, architecture), or not with the chosen attention operator.</exception>
    /// <exception cref="ArgumentException">The options conflict (attention outputs with GroupQueryAttention).</exception>
    public static void Build(DecoderConfig config, IWeightSource weights, string outputFolder, ModelBuilderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        options ??= new ModelBuilderOptions();
        if (config.AttentionHeadCount % config.KeyValueHeadCount != 0)
        {
            throw new ModelFormatException($"{config.AttentionHeadCount} attention heads are not a multiple of {config.KeyValueHeadCount} key/value heads.");
        }

        if (config.HeadSize % 2 != 0 && config.ModelType == "llama")
        {
            throw new ModelFormatException($"RoPE needs an even head size; the config has {config.HeadSize}.");
        }

        if (options.Attention == AttentionOperator.GroupQuery)
        {
            if (options.OutputAttentions)
            {
                throw new ArgumentException(
                    "OutputAttentions needs Attention = Standard: a GroupQueryAttention node does not output the attention probabilities.", nameof(options));
            }

            if (config.HeadSize % 8 != 0)
            {
                throw new ModelFormatException(
                    $"GroupQueryAttention needs a head size that is a multiple of 8; the config has {config.HeadSize}. Build with Attention = Standard.");
            }
        }

        DecoderGraphWriter writer = config.ModelType switch
        {
            "llama" => new LlamaGraphWriter(config, weights, options),
            "gpt2" => new Gpt2GraphWriter(config, weights, options),
            _ => throw new ModelFormatException($"Unsupported model type '{config.ModelType}'."),
        };

        Directory.CreateDirectory(outputFolder);
        // Weights stream to the data file as they are made; a model whose whole file stays under the threshold is then
        // written inline. The decision counts the graph too, so no model.onnx reaches protobuf's 2 GiB limit.
        using var data = new ExternalDataWriter(outputFolder, options.ExternalDataFileName ?? "model.onnx.data", options.ExternalDataChunkBytes);
        var graph = writer.Build(data);
        var limit = Math.Min(options.ExternalDataThreshold, ProtobufLimit);
        if (graph.WeightBytes + graph.StructureBytes <= limit)
        {
            graph.Inline();
        }

        var metadata = new Dictionary<string, string>
        {
            ["onnxlm.architecture"] = config.ModelType,
            ["onnxlm.weights"] = options.Quantization is { } q ? $"int{q.Bits}" : options.Float16Weights ? "float16" : "float32",
        };
        if (options.Quantization is not null)
        {
            metadata["onnxlm.quantization"] = options.Quantization.ToString();
        }

        graph.Save(Path.Combine(outputFolder, "model.onnx"), null, metadata);
        WriteGenAIConfig(config, options, outputFolder);
    }

    private static void WriteGenAIConfig(DecoderConfig config, ModelBuilderOptions options, string folder)
    {
        var context = options.ContextLength ?? config.MaxPositions;
        JsonNode Eos() => config.EosTokenIds.Count == 1 ? config.EosTokenIds[0] : new JsonArray(config.EosTokenIds.Select(e => (JsonNode)e).ToArray());
        var sessionOptions = new JsonObject { ["log_id"] = "onnxlm", ["provider_options"] = new JsonArray() };
        if (options.LogitsToKeepInput)
        {
            // ONNX Runtime warns at every load that an input with a default is not folded as a constant; GenAI would print it.
            sessionOptions["log_severity_level"] = 3;
        }

        var root = new JsonObject
        {
            ["model"] = new JsonObject
            {
                ["bos_token_id"] = config.BosTokenId,
                ["context_length"] = context,
                ["decoder"] = new JsonObject
                {
                    ["session_options"] = sessionOptions,
                    ["filename"] = "model.onnx",
                    ["head_size"] = config.HeadSize,
                    ["hidden_size"] = config.HiddenSize,
                    ["inputs"] = new JsonObject
                    {
                        ["input_ids"] = "input_ids",
                        ["attention_mask"] = "attention_mask",
                        ["position_ids"] = "position_ids",
                        ["past_key_names"] = "past_key_values.%d.key",
                        ["past_value_names"] = "past_key_values.%d.value",
                    },
                    ["outputs"] = new JsonObject
                    {
                        ["logits"] = "logits",
                        ["present_key_names"] = "present.%d.key",
                        ["present_value_names"] = "present.%d.value",
                    },
                    ["num_attention_heads"] = config.AttentionHeadCount,
                    ["num_hidden_layers"] = config.LayerCount,
                    ["num_key_value_heads"] = config.KeyValueHeadCount,
                },
                ["eos_token_id"] = Eos(),
                ["pad_token_id"] = config.PadTokenId ?? config.EosTokenIds.FirstOrDefault(),
                ["type"] = config.ModelType,
                ["vocab_size"] = config.VocabularySize,
            },
            ["search"] = new JsonObject
            {
                ["diversity_penalty"] = 0.0, ["do_sample"] = false, ["early_stopping"] = true, ["length_penalty"] = 1.0,
                ["max_length"] = context, ["min_length"] = 0, ["no_repeat_ngram_size"] = 0, ["num_beams"] = 1,
                ["num_return_sequences"] = 1,
                // GroupQueryAttention graphs append in place into one max_length buffer bound as past and present.
                ["past_present_share_buffer"] = options.Attention == AttentionOperator.GroupQuery, ["repetition_penalty"] = 1.0,
                ["temperature"] = 1.0, ["top_k"] = 1, ["top_p"] = 1.0,
            },
        };
        File.WriteAllText(Path.Combine(folder, "genai_config.json"), root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private sealed class SafeTensorsSource(SafeTensorsFile file) : IWeightSource
    {
        public bool Contains(string name) => file.Contains(name);

        public float[] Read(string name, params long[] shape) => file.Read(name, shape);
    }
}
