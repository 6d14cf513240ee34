namespace OnnxLM.Explain;

/// <summary>
/// Attention probabilities of one prompt: for every layer and head, how much each token (query) attends to each
/// earlier token (key). Rows sum to 1; entries above the diagonal are 0 (the causal mask).
/// </summary>
public sealed class AttentionMap
{
    private readonly float[] _weights;

    internal AttentionMap(IReadOnlyList<string> tokens, int layers, int heads, float[] weights)
    {
        Tokens = tokens;
        LayerCount = layers;
        HeadCount = heads;
        _weights = weights;
    }

    /// <summary>The prompt's tokens, as text, in order (the rows and columns).</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>Layers.</summary>
    public int LayerCount { get; }

    /// <summary>Attention heads per layer.</summary>
    public int HeadCount { get; }

    /// <summary>The weight query token <paramref name="query"/> gives key token <paramref name="key"/> in a layer and head.</summary>
    public float this[int layer, int head, int query, int key]
    {
        get
        {
            var n = Tokens.Count;
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)layer, (uint)LayerCount, nameof(layer));
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)head, (uint)HeadCount, nameof(head));
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)query, (uint)n, nameof(query));
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)key, (uint)n, nameof(key));
            return _weights[((((layer * HeadCount) + head) * n) + query) * n + key];
        }
    }

    /// <summary>One head's matrix, rows = queries, columns = keys.</summary>
    public float[][] Head(int layer, int head)
    {
        var n = Tokens.Count;
        return [.. Enumerable.Range(0, n).Select(q => Enumerable.Range(0, n).Select(k => this[layer, head, q, k]).ToArray())];
    }

    /// <summary>The average over a layer's heads.</summary>
    public float[][] LayerAverage(int layer)
    {
        var n = Tokens.Count;
        var result = new float[n][];
        for (var q = 0; q < n; q++)
        {
            result[q] = new float[n];
            for (var k = 0; k < n; k++)
            {
                for (var h = 0; h < HeadCount; h++) result[q][k] += this[layer, h, q, k] / HeadCount;
            }
        }

        return result;
    }
}
