namespace OnnxLM;

/// <summary>Keeps the <see cref="K"/> highest logits (ties at the boundary all kept) and masks the rest.</summary>
public sealed class TopKProcessor : ILogitProcessor
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

        if (_scratch.Length != logits.Length)
        {
            _scratch = new float[logits.Length];
        }

        // The k-th largest value is the threshold (Hugging Face's TopKLogitsWarper keeps ties with it too).
        logits.CopyTo(_scratch);
        var threshold = SamplingMath.KthLargest(_scratch, K);
        for (var i = 0; i < logits.Length; i++)
        {
            if (logits[i] < threshold)
            {
                logits[i] = float.NegativeInfinity;
            }
        }
    }
}
