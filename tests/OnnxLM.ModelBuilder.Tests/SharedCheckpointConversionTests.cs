using OnnxLM.Tests;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>The converted Hugging Face checkpoint reproduces the graph PyTorch's own exporter made from the same weights.</summary>
public sealed class SharedCheckpointConversionTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("onnxlm-convert-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    [SharedModelFact("torch-llama-fp32-hf", "torch-llama-fp32")]
    public void ConvertedCheckpointMatchesTorchExportFullSequenceAndStepByStep()
    {
        DecoderModelBuilder.Convert(TestPaths.SharedModel("torch-llama-fp32-hf"), _out);
        var cpu = new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu };
        using var ours = LanguageModel.Load(_out, cpu);
        using var theirs = LanguageModel.Load(TestPaths.SharedModel("torch-llama-fp32"), cpu);
        Assert.Equal(ModelFolderLayout.OnnxRuntimeGenAI, ours.Info.FolderLayout);
        Assert.Equal((4, 4, 2, 32, 2000), (ours.Info.LayerCount, ours.Info.AttentionHeadCount, ours.Info.KeyValueHeadCount, ours.Info.HeadSize, ours.Info.VocabularySize));

        var ids = ours.Tokenizer.Encode("The LORD is my shepherd; I shall not want. He maketh me to lie down in green pastures");
        Assert.Equal(theirs.Tokenizer.Encode("The LORD is my shepherd; I shall not want. He maketh me to lie down in green pastures"), ids);

        // Full sequence: every position's logits.
        var vocab = ours.Info.VocabularySize;
        var a = new float[ids.Length * vocab];
        var b = new float[ids.Length * vocab];
        using (var s = ours.CreateSession()) s.AppendWithAllLogits(ids, a, CancellationToken.None);
        using (var s = theirs.CreateSession()) s.AppendWithAllLogits(ids, b, CancellationToken.None);
        Assert.True(MaxAbsDiff(a, b) <= 1e-4f, $"full sequence differs by {MaxAbsDiff(a, b)}");

        // Step by step with the cache, one token at a time after a 3-token prompt.
        using var x = ours.CreateSession();
        using var y = theirs.CreateSession();
        x.Append(ids.AsSpan(0, 3));
        y.Append(ids.AsSpan(0, 3));
        for (var i = 3; i < ids.Length; i++)
        {
            Assert.True(MaxAbsDiff(x.NextTokenLogits, y.NextTokenLogits) <= 1e-4f, $"step {i} differs by {MaxAbsDiff(x.NextTokenLogits, y.NextTokenLogits)}");
            x.Append(ids[i]);
            y.Append(ids[i]);
        }
    }

    [Fact]
    public void BadCheckpointsAreTypedErrors()
    {
        var missing = Assert.Throws<ModelFormatException>(() => DecoderModelBuilder.Convert(Path.Combine(_out, "nope"), Path.Combine(_out, "o")));
        Assert.Contains("does not exist", missing.Message);

        File.WriteAllText(Path.Combine(_out, "config.json"), """{ "model_type": "bert", "hidden_size": 8 }""");
        Assert.Contains("bert", Assert.Throws<ModelFormatException>(() => DecoderModelBuilder.Convert(_out, Path.Combine(_out, "o"))).Message);

        File.WriteAllText(Path.Combine(_out, "config.json"), """
            { "model_type": "llama", "hidden_size": 8, "intermediate_size": 16, "num_attention_heads": 2, "num_hidden_layers": 1,
              "vocab_size": 11, "max_position_embeddings": 16 }
            """);
        Assert.Contains("model.safetensors", Assert.Throws<ModelFormatException>(() => DecoderModelBuilder.Convert(_out, Path.Combine(_out, "o"))).Message);

        // A checkpoint whose tensors do not fit the config.
        RandomCheckpoint.WriteSafeTensors(Path.Combine(_out, "model.safetensors"), new() { ["model.embed_tokens.weight"] = ([11, 9], new float[99]) });
        var shape = Assert.Throws<ModelFormatException>(() => DecoderModelBuilder.Convert(_out, Path.Combine(_out, "o")));
        Assert.Contains("model.embed_tokens.weight", shape.Message);
        Assert.Contains("[11, 8]", shape.Message);
    }

    internal static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    internal static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        var max = 0f;
        for (var i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }
}
