namespace OnnxLM.ModelBuilder.Tests;

/// <summary>
/// What <see cref="ReferenceDecoder.Forward"/> records and changes on request: every block output added to the residual
/// stream (attention then MLP, per layer, [position][hidden]), and blocks zeroed (a layer's MLP, one head of a layer).
/// </summary>
public sealed class ReferenceTrace
{
    /// <summary>The residual additions' branch tensors in order: index 2·layer is attention, 2·layer + 1 the MLP.</summary>
    public List<double[][]> Branches { get; } = [];

    /// <summary>Layers whose MLP output is replaced by zeros.</summary>
    public HashSet<int> ZeroMlp { get; init; } = [];

    /// <summary>A (layer, head) whose attention output is replaced by zeros before the output projection.</summary>
    public (int Layer, int Head)? ZeroHead { get; init; }

    internal void Record(int index, int position, int positions, double[] branch)
    {
        while (Branches.Count <= index) Branches.Add(new double[positions][]);
        Branches[index][position] = (double[])branch.Clone();
    }
}
