namespace OnnxLM.Sampling;

/// <summary>Keeps the <see cref="K"/> highest logits (ties at the boundary all kept) and masks the rest.</summary>
internal sealed class TopKProcessor : ILogitProcessor
{
    private float[] _scratch = [];

    /// <summary>Creates the processor.</summary>
    /// <param name="k">How many tokens to keep; at least 1.</param>
    public TopKProcessor(int k)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        K = k;
    }

    /// <summary>How many tokens are kept.</summary>
    public int K { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        if (K >= logits.Length)
        {
            return;
        }

        if (_scratch.Length != K)
        {
            _scratch = new float[K];
        }

        // The k-th largest value is the threshold (Hugging Face's TopKLogitsWarper keeps ties with it too).
        SamplingMath.MaskBelow(logits, SamplingMath.KthLargest(logits, K, _scratch));
    }
}
