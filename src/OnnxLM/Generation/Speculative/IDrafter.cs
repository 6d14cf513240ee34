namespace OnnxLM;

/// <summary>Proposes the tokens that may follow a sequence, for speculative decoding to check.</summary>
internal interface IDrafter : IDisposable
{
    /// <summary>
    /// Writes up to <c>draft.Length</c> guesses of the tokens after <paramref name="history"/> (prompt and generated tokens)
    /// into <paramref name="draft"/> and returns how many; 0 when it has no guess.
    /// </summary>
    int Draft(ReadOnlySpan<int> history, Span<int> draft, CancellationToken cancellationToken);
}
