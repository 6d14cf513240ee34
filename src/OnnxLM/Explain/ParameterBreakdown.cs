namespace OnnxLM.Explain;

/// <summary>Where the model's parameters are, from its graph's initializers.</summary>
public sealed record ParameterBreakdown(long Total, IReadOnlyList<ParameterGroup> Groups)
{
    /// <summary>Bytes all initializers occupy as stored (quantized blocks with their scales and zero points included).</summary>
    public long Bytes { get; init; }

    /// <summary>Stored bytes per parameter: 4 for float32, 2 for float16, about 0.6 for 4-bit blocks of 32 with float scales.</summary>
    public double BytesPerParameter => Total == 0 ? 0 : (double)Bytes / Total;
}
