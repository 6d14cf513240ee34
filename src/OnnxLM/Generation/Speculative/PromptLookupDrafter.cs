namespace OnnxLM;

/// <summary>
/// Prompt-lookup drafts (Saxena's prompt lookup decoding; Hugging Face's PromptLookupCandidateGenerator, vLLM's n-gram
/// proposer): find the last n tokens earlier in the sequence, longest n first, and propose what followed them.
/// </summary>
internal sealed class PromptLookupDrafter(int maxNGram, int minNGram) : IDrafter
{
    public int Draft(ReadOnlySpan<int> history, Span<int> draft, CancellationToken cancellationToken)
    {
        var length = history.Length;
        for (var n = Math.Min(maxNGram, length - 1); n >= minNGram; n--)
        {
            var tail = history[(length - n)..];

            // The latest earlier occurrence: the nearest context is the likeliest to be repeated next (a loop the text is
            // in, the passage being quoted). Occurrences must end before the tail starts, so something follows them.
            for (var start = length - n - 1; start >= 0; start--)
            {
                if (history[start] != tail[0] || !history.Slice(start, n).SequenceEqual(tail)) continue;
                var from = start + n;
                var count = Math.Min(draft.Length, length - from);
                history.Slice(from, count).CopyTo(draft);
                return count;
            }
        }

        return 0;
    }

    public void Dispose()
    {
    }
}
