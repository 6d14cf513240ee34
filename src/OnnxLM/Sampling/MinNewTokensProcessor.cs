namespace OnnxLM.Sampling;

/// <summary>Masks stop tokens until a minimum number of tokens has been generated (Hugging Face <c>MinNewTokensLengthLogitsProcessor</c>).</summary>
internal sealed class MinNewTokensProcessor : ILogitProcessor
{
    private readonly int[] _stopIds;

    /// <summary>Creates the processor.</summary>
    /// <param name="minNewTokens">Tokens to generate before a stop token is allowed.</param>
    /// <param name="stopTokenIds">The stop (EOS) ids to mask.</param>
    public MinNewTokensProcessor(int minNewTokens, IEnumerable<int> stopTokenIds)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(minNewTokens);
        MinNewTokens = minNewTokens;
        _stopIds = stopTokenIds.ToArray();
    }

    /// <summary>Tokens generated before a stop token is allowed.</summary>
    public int MinNewTokens { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        if (context.GeneratedCount >= MinNewTokens) return;
        foreach (var id in _stopIds)
        {
            if ((uint)id < (uint)logits.Length) logits[id] = float.NegativeInfinity;
        }
    }
}
