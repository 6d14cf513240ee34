using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM.Explain;

/// <summary>
/// A second session over the model's graph with the layer views' tensors added as outputs (residual stream, q·kᵀ,
/// softmax input and output); runs one prompt and hands back those tensors as floats. Owns the session.
/// </summary>
internal sealed class LayerProbe : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _outputs;
    private readonly DecoderGraph _graph;

    public LayerProbe(LanguageModel model, OnnxModelFile file, IReadOnlyList<string> outputs)
    {
        _graph = model.Runtime.Graph;
        _outputs = [.. outputs.Distinct()];
        using var options = new SessionOptions();
        options.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", Path.GetDirectoryName(model.Info.GraphPath)!);
        var type = _graph.Signature.LogitsType == TensorElementType.Float16 ? 10 : 1;
        _session = new InferenceSession(file.WithExtraOutputs([.. _outputs.Where(o => !file.Outputs.Contains(o))], type), options);
    }

    /// <summary>The outputs this probe can return.</summary>
    public IReadOnlyList<string> Outputs => _outputs;

    /// <summary>Runs <paramref name="ids"/> (one row, empty past) and returns <paramref name="names"/>' values as floats with their shapes.</summary>
    public (float[] Values, long[] Shape)[] Run(int[] ids, IReadOnlyList<string> names, CancellationToken cancellationToken)
    {
        using var feed = new GraphFeed(_graph);
        feed.Begin(1, ids.Length, 0);
        feed.Row(0, ids, 0);
        using var runOptions = new RunOptions();
        using var results = feed.Run(_session, runOptions, null, names, cancellationToken);
        var values = new (float[], long[])[names.Count];
        for (var i = 0; i < names.Count; i++)
        {
            var info = results[i].GetTensorTypeAndShape();
            var data = new float[checked((int)info.ElementCount)];
            GraphRun.CopyAsFloat(results[i], info.ElementDataType, 0, data.Length, data);
            values[i] = (data, info.Shape);
        }

        return values;
    }

    public void Dispose() => _session.Dispose();
}
