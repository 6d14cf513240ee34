using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// The added tokens of a tokenizer and how Hugging Face finds them in text: leftmost-longest matches, first of the
/// tokens matched on the original text, then (in what is left, after normalization) of those matched on the
/// normalized text, with the lstrip / rstrip / single_word rules applied to each match.
/// </summary>
internal sealed class AddedVocabulary
{
    private readonly Dictionary<int, AddedToken> _byId = [];
    private readonly Dictionary<string, AddedToken> _byContent = new(StringComparer.Ordinal);
    private readonly Matcher _raw;
    private readonly Matcher _normalized;

    public AddedVocabulary(IEnumerable<AddedToken> tokens, INormalizer? normalizer)
    {
        var raw = new List<(string, AddedToken)>();
        var normalized = new List<(string, AddedToken)>();
        foreach (var token in tokens)
        {
            _byId[token.Id] = token;
            _byContent[token.Content] = token;
            if (token.Content.Length == 0)
            {
                continue;
            }

            if (token.IsNormalized && normalizer is not null)
            {
                // Hugging Face matches a normalized token by its own normalized form.
                var form = normalizer.Normalize(new NormalizedText(token.Content, null, null)).Text;
                if (form.Length > 0) normalized.Add((form, token));
            }
            else if (token.IsNormalized)
            {
                normalized.Add((token.Content, token));
            }
            else
            {
                raw.Add((token.Content, token));
            }
        }

        _raw = new Matcher(raw);
        _normalized = new Matcher(normalized);
    }

    public IEnumerable<AddedToken> Tokens => _byId.Values;

    public int Count => _byId.Count;

    public int MaxId => _byId.Count == 0 ? -1 : _byId.Keys.Max();

    public AddedToken? ById(int id) => _byId.GetValueOrDefault(id);

    public AddedToken? ByContent(string content) => _byContent.GetValueOrDefault(content);

    public bool IsSpecial(int id) => _byId.TryGetValue(id, out var t) && t.Special;

    /// <summary>Splits <paramref name="text"/> at matches of the raw (not normalized) added tokens.</summary>
    public void SplitRaw(NormalizedText text, List<(NormalizedText Text, AddedToken? Token)> output) => Split(_raw, text, output);

    /// <summary>Splits an already normalized piece at matches of the normalized added tokens.</summary>
    public void SplitNormalized(NormalizedText text, List<(NormalizedText Text, AddedToken? Token)> output) => Split(_normalized, text, output);

    private static void Split(Matcher matcher, NormalizedText text, List<(NormalizedText, AddedToken?)> output)
    {
        var s = text.Text;
        if (matcher.IsEmpty || s.Length == 0)
        {
            output.Add((text, null));
            return;
        }

        var startOffset = 0;
        var position = 0;
        while (matcher.Find(s, position) is var (matchStart, token, length) && token is not null)
        {
            var start = matchStart;
            var stop = matchStart + length;
            position = stop; // matches do not overlap: the search goes on after this one, as aho-corasick's iterator does
            if (start < startOffset)
            {
                continue;
            }

            if (token.SingleWord)
            {
                var startSpace = start == 0 || !IsWordChar(s, start, before: true);
                var stopSpace = stop == s.Length || !IsWordChar(s, stop, before: false);
                if (!startSpace || !stopSpace)
                {
                    continue;
                }
            }

            if (token.LStrip)
            {
                var newStart = start;
                while (newStart > 0 && IsWhiteSpaceBefore(s, newStart, out var width)) newStart -= width;
                start = Math.Max(newStart, startOffset);
            }

            if (token.RStrip)
            {
                while (stop < s.Length && Rune.TryGetRuneAt(s, stop, out var r) && Rune.IsWhiteSpace(r)) stop += r.Utf16SequenceLength;
            }

            if (startOffset < start)
            {
                output.Add((text.Slice(startOffset, start - startOffset), null));
            }

            output.Add((text.Slice(start, stop - start), token));
            startOffset = stop;
            position = Math.Max(position, stop);
        }

        if (startOffset < s.Length)
        {
            output.Add((text.Slice(startOffset, s.Length - startOffset), null));
        }
    }

    private static bool IsWhiteSpaceBefore(string s, int index, out int width)
    {
        width = index >= 2 && char.IsSurrogatePair(s[index - 2], s[index - 1]) ? 2 : 1;
        return Rune.TryGetRuneAt(s, index - width, out var r) && Rune.IsWhiteSpace(r);
    }

    /// <summary>Whether the character before (or at) <paramref name="index"/> is a word character (alphanumeric or _).</summary>
    private static bool IsWordChar(string s, int index, bool before)
    {
        if (before)
        {
            var width = index >= 2 && char.IsSurrogatePair(s[index - 2], s[index - 1]) ? 2 : 1;
            index -= width;
        }

        if (!Rune.TryGetRuneAt(s, index, out var r))
        {
            return false;
        }

        return Rune.IsLetterOrDigit(r) || r.Value == '_' || Rune.GetUnicodeCategory(r) is System.Globalization.UnicodeCategory.LetterNumber
            or System.Globalization.UnicodeCategory.OtherNumber;
    }

    /// <summary>
    /// Leftmost-longest search among a set of strings through a character trie: at each position the walk follows the
    /// text as far as the trie goes and keeps the last token it passed, so the cost per position is the length of the
    /// longest token starting there, not the number of tokens (Gemma has 6,415).
    /// </summary>
    private sealed class Matcher
    {
        private readonly Dictionary<long, int> _children = [];
        private readonly List<AddedToken?> _terminal = [null];
        private readonly bool[] _first = new bool[char.MaxValue + 1];

        public Matcher(List<(string Pattern, AddedToken Token)> patterns)
        {
            foreach (var (pattern, token) in patterns)
            {
                var node = 0;
                foreach (var c in pattern)
                {
                    if (!_children.TryGetValue(Edge(node, c), out var child))
                    {
                        child = _terminal.Count;
                        _terminal.Add(null);
                        _children[Edge(node, c)] = child;
                    }

                    node = child;
                }

                _terminal[node] ??= token; // the first of equal contents wins, as in a list scanned in order
                _first[pattern[0]] = true;
            }
        }

        public bool IsEmpty => _children.Count == 0;

        private static long Edge(int node, char c) => ((long)node << 16) | c;

        public (int Start, AddedToken? Token, int Length) Find(string s, int from)
        {
            for (var i = from; i < s.Length; i++)
            {
                if (!_first[s[i]])
                {
                    continue;
                }

                var node = 0;
                (AddedToken? Token, int Length) best = (null, 0);
                for (var j = i; j < s.Length && _children.TryGetValue(Edge(node, s[j]), out node); j++)
                {
                    if (_terminal[node] is { } token) best = (token, j + 1 - i);
                }

                if (best.Token is not null)
                {
                    return (i, best.Token, best.Length);
                }
            }

            return (-1, null, 0);
        }
    }
}
