namespace OnnxLM.Sampling;

/// <summary>
/// Forbids repeating any n-gram (Hugging Face <c>NoRepeatNGramLogitsProcessor</c>): a token is masked when, with the
/// last n−1 tokens, it would form an n-gram that already occurs in the sequence.
/// </summary>
internal sealed class NoRepeatNGramProcessor : ILogitProcessor
{
    /// <summary>Creates the processor.</summary>
    /// <param name="size">The n-gram length, ≥ 1.</param>
    public NoRepeatNGramProcessor(int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        Size = size;
    }

    /// <summary>The n-gram length.</summary>
    public int Size { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        var tokens = context.Tokens;
        var n = Size;
        if (tokens.Length + 1 < n) return;
        var suffix = tokens[(tokens.Length - (n - 1))..];
        for (var start = 0; start + n <= tokens.Length; start++)
        {
            if (tokens.Slice(start, n - 1).SequenceEqual(suffix))
            {
                var banned = tokens[start + n - 1];
                if ((uint)banned < (uint)logits.Length) logits[banned] = float.NegativeInfinity;
            }
        }
    }
}
