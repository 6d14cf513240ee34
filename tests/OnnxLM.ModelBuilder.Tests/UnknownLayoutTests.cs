using OnnxLM.ModelBuilder.Onnx;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>Real ONNX graphs in layouts OnnxLM cannot drive fail with a message listing what the graph has.</summary>
public sealed class UnknownLayoutTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("onnxlm-layout-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    private void WriteGraph(Action<OnnxGraph> build)
    {
        var graph = new OnnxGraph();
        graph.Input("input_ids", OnnxGraph.Int64, "batch", "seq");
        var embedding = graph.Weight("embedding", new float[7 * 4], [7, 4], asFloat16: false);
        build(graph);
        graph.AddNode("MatMul", [graph.Op("Gather", [embedding, "input_ids"], ("axis", 0)), graph.Weight("head", new float[4 * 7], [4, 7], false)], ["logits"]);
        graph.Output("logits", OnnxGraph.Float, "batch", "seq", 7);
        graph.Save(Path.Combine(_out, "model.onnx"), null, new Dictionary<string, string>());
        File.WriteAllText(Path.Combine(_out, "genai_config.json"), """{ "model": { "type": "toy", "context_length": 16, "decoder": { "filename": "model.onnx" } } }""");
    }

    [Fact]
    public void GraphWithoutKvCacheIsRejectedWithItsInputsListed()
    {
        WriteGraph(_ => { });
        var e = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(_out));
        Assert.Contains("no past key/value inputs", e.Message);
        Assert.Contains("input_ids: Int64 [batch, seq]", e.Message);
        Assert.Contains("logits: Float [batch, seq, 7]", e.Message);
    }

    [Fact]
    public void GraphWithAnInputOnnxLMCannotFeedIsRejected()
    {
        WriteGraph(graph =>
        {
            graph.Input("past_key_values.0.key", OnnxGraph.Float, "batch", 1, "past", 4);
            graph.Input("past_key_values.0.value", OnnxGraph.Float, "batch", 1, "past", 4);
            // token_type_ids is fed now (zeros); an image input of a multimodal export is not.
            graph.Input("pixel_values", OnnxGraph.Float, "batch", 3, 8, 8);
            graph.AddNode("Identity", ["past_key_values.0.key"], ["present.0.key"]);
            graph.AddNode("Identity", ["past_key_values.0.value"], ["present.0.value"]);
            graph.AddNode("Identity", ["pixel_values"], ["unused"]);
            graph.Output("present.0.key", OnnxGraph.Float, "batch", 1, "past", 4);
            graph.Output("present.0.value", OnnxGraph.Float, "batch", 1, "past", 4);
            graph.Output("unused", OnnxGraph.Float, "batch", 3, 8, 8);
        });
        var e = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(_out));
        Assert.Contains("the input(s) pixel_values", e.Message);
        Assert.Contains("does not know how to feed", e.Message);
    }
}
