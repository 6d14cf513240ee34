namespace OnnxLM.ModelBuilder;

/// <summary>How <see cref="WeightQuantization"/> chooses each block's scale (and zero point).</summary>
public enum QuantizationMethod
{
    /// <summary>
    /// Round to nearest: the scale maps the block's largest magnitude (symmetric) or its range (with zero points) onto
    /// the integer grid, and every weight rounds to the nearest step.
    /// </summary>
    RoundToNearest,

    /// <summary>
    /// Per-block scale search: tries a range of scales around the round-to-nearest one (clipping the largest weights a
    /// little lets every other weight land on a finer grid) and keeps the one with the least squared reconstruction
    /// error. Slower to build, the same size and speed to run.
    /// </summary>
    ScaleSearch,
}
