namespace OnnxLM.Tokenization;

/// <summary>Cuts a text at delimiter ranges the way Hugging Face's NormalizedString::split combines them with a behaviour.</summary>
internal static class Splitter
{
    /// <summary>Splits every piece with <paramref name="find"/>'s delimiter ranges; <paramref name="invert"/> makes the rest the delimiters.</summary>
    public static void SplitAll(List<NormalizedText> pieces, Func<string, List<(int Start, int End)>> find, SplitBehavior behavior, bool invert = false)
    {
        var output = new List<NormalizedText>(pieces.Count * 2);
        foreach (var piece in pieces)
        {
            // Per piece, not per character: a regex over a long piece is bounded by its match timeout instead.
            piece.Budget?.Cancellation.ThrowIfCancellationRequested();
            Split(piece, find(piece.Text), behavior, invert, output);
        }

        pieces.Clear();
        pieces.AddRange(output);
    }

    public static void Split(NormalizedText text, List<(int Start, int End)> delimiters, SplitBehavior behavior, bool invert, List<NormalizedText> output)
    {
        var length = text.Length;
        if (length == 0)
        {
            return;
        }

        // The whole text as alternating (range, is-delimiter) parts.
        var parts = new List<(int Start, int End, bool Match)>(delimiters.Count * 2 + 1);
        var previous = 0;
        foreach (var (start, end) in delimiters)
        {
            if (previous != start) parts.Add((previous, start, invert));
            parts.Add((start, end, !invert));
            previous = end;
        }

        if (previous != length) parts.Add((previous, length, invert));

        switch (behavior)
        {
            case SplitBehavior.Removed:
                parts.RemoveAll(p => p.Match);
                break;
            case SplitBehavior.MergedWithPrevious:
            {
                var merged = new List<(int Start, int End, bool Match)>(parts.Count);
                var previousMatch = false;
                foreach (var p in parts)
                {
                    if (p.Match && !previousMatch && merged.Count > 0) merged[^1] = (merged[^1].Start, p.End, merged[^1].Match);
                    else merged.Add(p);
                    previousMatch = p.Match;
                }

                parts = merged;
                break;
            }

            case SplitBehavior.MergedWithNext:
            {
                var merged = new List<(int Start, int End, bool Match)>(parts.Count);
                var previousMatch = false;
                for (var i = parts.Count - 1; i >= 0; i--)
                {
                    var p = parts[i];
                    if (p.Match && !previousMatch && merged.Count > 0) merged[^1] = (p.Start, merged[^1].End, merged[^1].Match);
                    else merged.Add(p);
                    previousMatch = p.Match;
                }

                merged.Reverse();
                parts = merged;
                break;
            }

            case SplitBehavior.Contiguous:
            {
                var merged = new List<(int Start, int End, bool Match)>(parts.Count);
                var previousMatch = false;
                foreach (var p in parts)
                {
                    if (p.Match == previousMatch && merged.Count > 0) merged[^1] = (merged[^1].Start, p.End, merged[^1].Match);
                    else merged.Add(p);
                    previousMatch = p.Match;
                }

                parts = merged;
                break;
            }
        }

        foreach (var (start, end, _) in parts)
        {
            if (end > start)
            {
                output.Add(text.Slice(start, end - start));
            }
        }
    }

    /// <summary>Each code point for which <paramref name="predicate"/> holds is one delimiter.</summary>
    public static Func<string, List<(int Start, int End)>> Chars(Func<System.Text.Rune, bool> predicate) => s =>
    {
        var result = new List<(int, int)>();
        for (var i = 0; i < s.Length;)
        {
            var width = char.IsSurrogatePair(s, i) ? 2 : 1;
            if (System.Text.Rune.TryGetRuneAt(s, i, out var r) && predicate(r))
            {
                result.Add((i, i + width));
            }

            i += width;
        }

        return result;
    };
}
