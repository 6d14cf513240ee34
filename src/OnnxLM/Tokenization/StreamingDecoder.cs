namespace OnnxLM;

/// <summary>
/// Decodes one sequence token by token so each piece of text is emitted exactly once: text is held back while
/// the last tokens end inside a UTF-8 character (byte-level or byte-fallback tokens), and every delta is
/// computed as decode(window) − decode(window prefix), so tokenizers whose pieces depend on their neighbours
/// (SentencePiece's leading space) stream exactly. Concatenating all deltas and <see cref="Flush"/> equals
/// <see cref="TextTokenizer.Decode(ReadOnlySpan{int}, bool, bool?)"/> of all ids without the clean-up of spaces. Not thread-safe.
/// </summary>
public sealed class StreamingDecoder
{
    // A token window this long that still ends in U+FFFD is emitted anyway: the bytes are invalid, not incomplete.
    private const int MaxPending = 8;

    private readonly TextTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _ids = [];
    private int _prefixStart;
    private int _readStart;

    internal StreamingDecoder(TextTokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>
    /// Gives tokens that were already shown (such as the prompt) as context without emitting them, so the next
    /// deltas continue that text: a SentencePiece "▁Go" after "Moses," then streams as " Go", not "Go".
    /// </summary>
    public void Prime(ReadOnlySpan<int> contextIds)
    {
        Reset();
        // A few tokens are enough context: deltas only depend on the pieces next to the new ones.
        foreach (var id in contextIds[Math.Max(0, contextIds.Length - MaxPending)..])
        {
            _ = _tokenizer.TokenToPiece(id);
            _ids.Add(id);
        }

        _readStart = _ids.Count;
    }

    /// <summary>Adds a token and returns the text it completes (possibly empty).</summary>
    public string Append(int id)
    {
        _ = _tokenizer.TokenToPiece(id); // validates the id before it joins the window
        _ids.Add(id);
        return Emit(force: false);
    }

    /// <summary>Returns whatever text is still held back and starts over.</summary>
    public string Flush()
    {
        var rest = Emit(force: true);
        Reset();
        return rest;
    }

    /// <summary>Forgets all tokens.</summary>
    public void Reset()
    {
        _ids.Clear();
        _prefixStart = 0;
        _readStart = 0;
    }

    private string Emit(bool force)
    {
        if (_readStart >= _ids.Count)
        {
            return string.Empty;
        }

        var ids = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        // Without the clean-up of spaces before punctuation: it depends on the text after it, so deltas would not add up.
        var prefix = _tokenizer.Decode(ids[_prefixStart.._readStart], _skipSpecialTokens, cleanUpTokenizationSpaces: false);
        var full = _tokenizer.Decode(ids[_prefixStart..], _skipSpecialTokens, cleanUpTokenizationSpaces: false);
        var pending = _ids.Count - _readStart;
        if (!force && (full.Length <= prefix.Length || full.EndsWith('\uFFFD')) && pending < MaxPending)
        {
            return string.Empty;
        }

        var delta = full.Length >= prefix.Length && full.StartsWith(prefix, StringComparison.Ordinal) ? full[prefix.Length..] : full;
        _prefixStart = _readStart;
        _readStart = _ids.Count;
        return delta;
    }
}
