using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM.Tests;

/// <summary>
/// The one place that writes the graph's inputs: rows of different past lengths and token counts give the ids, positions,
/// mask and cache flag the batch's comments describe, written out here by hand.
/// </summary>
public sealed class GraphFeedTests
{
    [Fact]
    public void PaddedRowsGetZeroIdsTheirOwnPositionsAndAMaskOverTheirRealColumns()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        var sig = model.Runtime.Graph.Signature;
        Assert.NotNull(sig.AttentionMask);
        Assert.NotNull(sig.PositionIds);
        using var feed = new GraphFeed(model.Runtime.Graph);
        // A past 3 wide: row 0 holds 3 positions and appends 2 tokens, row 1 holds 1 and appends 1, row 2 holds 2 and appends none.
        feed.Begin(3, 2, 3);
        feed.Row(0, [11, 12], 3);
        feed.Row(1, [13], 1);
        feed.Row(2, [], 2);

        var inputs = Inputs(feed);
        Assert.Equal(new long[] { 11, 12, 13, 0, 0, 0 }, inputs[sig.InputIds]);
        Assert.Equal(new long[] { 3, 4, 1, 1, 2, 2 }, inputs[sig.PositionIds!]);
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0 }, inputs[sig.AttentionMask!]);
    }

    [Fact]
    public void UnpaddedRowsShareTheGraphsMaskOfOnesAndAFirstRunHasNoPast()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        var sig = model.Runtime.Graph.Signature;
        using var feed = new GraphFeed(model.Runtime.Graph);
        feed.Begin(2, 3, 0);
        feed.Row(0, [5, 6, 7], 0);
        feed.Row(1, [8, 9, 10], 0);

        var inputs = Inputs(feed);
        Assert.Equal(new long[] { 5, 6, 7, 8, 9, 10 }, inputs[sig.InputIds]);
        Assert.Equal(new long[] { 0, 1, 2, 0, 1, 2 }, inputs[sig.PositionIds!]);
        Assert.Equal(Enumerable.Repeat(1L, 6), inputs[sig.AttentionMask!]);
        if (sig.UseCacheBranch is { } branch) Assert.Equal(new long[] { 0 }, inputs[branch]);

        // Then one padded row after an unpadded one: the first row's mask is written too.
        feed.Begin(2, 1, 2);
        feed.Row(0, [1], 2);
        feed.Row(1, [2], 1);
        inputs = Inputs(feed);
        Assert.Equal(new long[] { 1, 1, 1, 0, 1, 1 }, inputs[sig.AttentionMask!]);
        Assert.Equal(new long[] { 2, 1 }, inputs[sig.PositionIds!]);
    }

    /// <summary>Each input the feed adds, as int64 values.</summary>
    private static Dictionary<string, long[]> Inputs(GraphFeed feed)
    {
        var names = new List<string>();
        var values = new List<OrtValue>();
        try
        {
            feed.AddTo(names, values);
            var result = new Dictionary<string, long[]>();
            for (var i = 0; i < names.Count; i++)
            {
                var value = values[i];
                result[names[i]] = value.GetTensorTypeAndShape().ElementDataType switch
                {
                    TensorElementType.Int64 => value.GetTensorDataAsSpan<long>().ToArray(),
                    TensorElementType.Int32 => [.. value.GetTensorDataAsSpan<int>().ToArray().Select(x => (long)x)],
                    TensorElementType.Bool => [.. value.GetTensorDataAsSpan<bool>().ToArray().Select(x => x ? 1L : 0L)],
                    var type => throw new InvalidOperationException($"Unexpected input type {type}."),
                };
            }

            return result;
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
    }
}
