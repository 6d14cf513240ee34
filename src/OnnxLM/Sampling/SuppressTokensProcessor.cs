namespace OnnxLM.Sampling;

/// <summary>Masks tokens so they are never generated (Hugging Face <c>SuppressTokensLogitsProcessor</c>).</summary>
internal sealed class SuppressTokensProcessor(IEnumerable<int> tokenIds) : ILogitProcessor
{
    private readonly int[] _ids = tokenIds.ToArray();

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        foreach (var id in _ids)
        {
            if ((uint)id < (uint)logits.Length) logits[id] = float.NegativeInfinity;
        }
    }
}
