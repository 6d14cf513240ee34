using Microsoft.ML.OnnxRuntime;

namespace OnnxLM;

/// <summary>
/// Runs several sequences through the graph in one forward pass from an empty cache, padded on the right. Attention
/// is causal, so no real position attends to the padding after it and each sequence's logits equal those of running
/// it alone; the attention mask also marks the padding for graphs that read it. Used to score many short pairs.
/// </summary>
internal static class PaddedBatch
{
    /// <summary>Positions × vocabulary entries of logits one batch may hold (256 MB of float32).</summary>
    public const long MaxLogitElements = 64L << 20;

    /// <summary>Sequences per batch at most.</summary>
    public const int MaxSequences = 32;

    /// <summary>Whether the graph takes a batch of several sequences (a dynamic batch dimension and an attention mask).</summary>
    public static bool IsSupported(DecoderGraph graph)
    {
        var sig = graph.Signature;
        return sig.AttentionMask is not null
            && graph.Session.InputMetadata.TryGetValue(sig.InputIds, out var ids) && ids.Dimensions is [-1, ..];
    }

    /// <summary>
    /// Runs <paramref name="sequences"/> together and copies the logits of sequence i's positions
    /// <paramref name="firstRows"/>[i] .. end into <paramref name="logits"/>[i] (row-major, [rows, vocab]).
    /// </summary>
    public static void Run(ModelRuntime model, IReadOnlyList<int[]> sequences, IReadOnlyList<int> firstRows, IReadOnlyList<float[]> logits, CancellationToken cancellationToken)
    {
        using var run = model.EnterRun();
        var graph = model.Graph;
        var sig = graph.Signature;
        var batch = sequences.Count;
        var width = sequences.Max(s => s.Length);
        var vocab = model.Info.VocabularySize;

        using var feed = new GraphFeed(graph);
        feed.Begin(batch, width, 0);
        for (var b = 0; b < batch; b++)
        {
            GraphRun.CheckTokenIds(sequences[b], vocab, nameof(sequences));
            feed.Row(b, sequences[b], 0);
        }

        using var runOptions = new RunOptions();
        using var outputs = feed.Run(graph.Session, runOptions, null, [sig.Logits], cancellationToken);
        var output = outputs[0];
        GraphRun.CheckLogits(output, batch, width, vocab, model.Info.GraphPath);
        for (var b = 0; b < batch; b++)
        {
            GraphRun.CopyAsFloat(output, sig.LogitsType, (b * width + firstRows[b]) * vocab, (sequences[b].Length - firstRows[b]) * vocab, logits[b]);
        }
    }
}
