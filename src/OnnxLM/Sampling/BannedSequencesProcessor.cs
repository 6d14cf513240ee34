namespace OnnxLM.Sampling;

/// <summary>
/// Forbids token sequences (Hugging Face <c>NoBadWordsLogitsProcessor</c>): a one-token sequence is always masked;
/// for a longer one, its last token is masked whenever the sequence so far ends with all its other tokens.
/// </summary>
internal sealed class BannedSequencesProcessor : ILogitProcessor
{
    private readonly int[][] _sequences;

    /// <summary>Creates the processor.</summary>
    public BannedSequencesProcessor(IEnumerable<IReadOnlyList<int>> sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        _sequences = sequences.Select(s => s.ToArray()).ToArray();
        if (_sequences.Any(s => s.Length == 0)) throw new ArgumentException("A banned sequence is empty.", nameof(sequences));
    }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        var tokens = context.Tokens;
        foreach (var sequence in _sequences)
        {
            var prefix = sequence.AsSpan(0, sequence.Length - 1);
            if (tokens.EndsWith(prefix) && (uint)sequence[^1] < (uint)logits.Length)
            {
                logits[sequence[^1]] = float.NegativeInfinity;
            }
        }
    }
}
