namespace OnnxLM.Sampling;

/// <summary>What a logit processor or picker may look at: the sequence so far and the seeded random source.</summary>
public sealed class SamplingContext
{
    private int[] _tokens = [];
    private int _length;

    internal SamplingContext(Random random, int promptLength)
    {
        Random = random;
        PromptLength = promptLength;
    }

    /// <summary>All tokens of the sequence so far: the prompt followed by the tokens generated.</summary>
    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, _length);

    /// <summary>How many of <see cref="Tokens"/> are the prompt.</summary>
    public int PromptLength { get; }

    /// <summary>How many tokens have been generated so far.</summary>
    public int GeneratedCount => _length - PromptLength;

    /// <summary>The generation's random source (seeded by <see cref="GenerationOptions.Seed"/>).</summary>
    public Random Random { get; }

    internal void SetTokens(int[] tokens, int length)
    {
        _tokens = tokens;
        _length = length;
    }
}
