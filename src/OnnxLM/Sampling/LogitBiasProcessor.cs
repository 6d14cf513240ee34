namespace OnnxLM.Sampling;

/// <summary>Adds a fixed bias to chosen tokens' logits (OpenAI <c>logit_bias</c>, llama.cpp <c>logit_bias</c>); −∞ bans a token.</summary>
internal sealed class LogitBiasProcessor : ILogitProcessor
{
    private readonly KeyValuePair<int, float>[] _bias;

    /// <summary>Creates the processor.</summary>
    /// <param name="bias">Token id → value added to its logit.</param>
    public LogitBiasProcessor(IReadOnlyDictionary<int, float> bias)
    {
        ArgumentNullException.ThrowIfNull(bias);
        foreach (var (id, value) in bias)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(id, nameof(bias));
            if (float.IsNaN(value) || float.IsPositiveInfinity(value)) throw new ArgumentOutOfRangeException(nameof(bias), value, $"The bias of token {id} must be a number or −∞.");
        }

        _bias = bias.ToArray();
    }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        foreach (var (id, value) in _bias)
        {
            if ((uint)id >= (uint)logits.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(logits), id, $"Logit bias names token {id}, outside the vocabulary of {logits.Length}.");
            }

            logits[id] += value;
        }
    }
}
