using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// SentencePiece's own normalizer (normalizer.cc), for a .model file: user-defined pieces are kept as they are,
/// everything else is rewritten by the longest matching rule of the compiled character map; with
/// remove_extra_whitespaces leading and trailing spaces go and runs of spaces become one; the dummy prefix adds a
/// space in front (or behind, with treat_whitespace_as_suffix) and escape_whitespaces writes spaces as ▁. Only the
/// ASCII space counts as whitespace here: the map is what turns tabs and newlines into spaces (nmt_nfkc).
/// </summary>
internal sealed class SentencePieceNormalizer : INormalizer
{
    private const char SpaceSymbol = '\u2581';

    private readonly PrecompiledNormalizer? _map;
    private readonly bool _addDummyPrefix;
    private readonly bool _removeExtraWhitespaces;
    private readonly bool _escapeWhitespaces;
    private readonly bool _whitespaceAsSuffix;

    // A trie over the UTF-8 bytes of the user-defined pieces (normalizer.cc's PrefixMatcher).
    private readonly Dictionary<int, int> _userChildren = [];
    private readonly List<bool> _userEnds = [false];

    /// <param name="map">The compiled character map, or null for none (identity).</param>
    /// <param name="addDummyPrefix">normalizer_spec.add_dummy_prefix.</param>
    /// <param name="removeExtraWhitespaces">normalizer_spec.remove_extra_whitespaces.</param>
    /// <param name="escapeWhitespaces">normalizer_spec.escape_whitespaces.</param>
    /// <param name="whitespaceAsSuffix">trainer_spec.treat_whitespace_as_suffix.</param>
    /// <param name="userDefined">The user-defined pieces, matched before the map and left unchanged.</param>
    public SentencePieceNormalizer(PrecompiledNormalizer? map, bool addDummyPrefix, bool removeExtraWhitespaces, bool escapeWhitespaces,
        bool whitespaceAsSuffix, IEnumerable<string> userDefined)
    {
        _map = map is { IsEmpty: false } ? map : null;
        _addDummyPrefix = addDummyPrefix;
        _removeExtraWhitespaces = removeExtraWhitespaces;
        _escapeWhitespaces = escapeWhitespaces;
        _whitespaceAsSuffix = whitespaceAsSuffix;
        foreach (var piece in userDefined)
        {
            var node = 0;
            foreach (var b in Encoding.UTF8.GetBytes(piece))
            {
                var key = (node << 8) | b;
                if (!_userChildren.TryGetValue(key, out var child))
                {
                    child = _userEnds.Count;
                    _userEnds.Add(false);
                    _userChildren[key] = child;
                }

                node = child;
            }

            _userEnds[node] = true;
        }
    }

    public NormalizedText Normalize(NormalizedText text)
    {
        if (text.Length == 0)
        {
            return text;
        }

        // Work on UTF-8 bytes as SentencePiece does, knowing the UTF-16 unit each byte came from.
        var s = text.Text;
        var bytes = new List<byte>(s.Length * 3);
        var unitOfByte = new List<int>(s.Length * 3);
        Span<byte> scratch = stackalloc byte[4];
        for (var i = 0; i < s.Length;)
        {
            var status = Rune.DecodeFromUtf16(s.AsSpan(i), out var rune, out var consumed);
            if (status != System.Buffers.OperationStatus.Done)
            {
                rune = Rune.ReplacementChar;
            }

            var written = rune.EncodeToUtf8(scratch);
            for (var b = 0; b < written; b++)
            {
                bytes.Add(scratch[b]);
                unitOfByte.Add(i);
            }

            i += consumed;
        }

        unitOfByte.Add(s.Length);
        var input = bytes.ToArray();

        // Chunks of output, each from the input units [From, To); Copy: the output is those units unchanged.
        var chunks = new List<(string Output, int From, int To, bool Copy)>();
        var position = 0;
        if (_removeExtraWhitespaces)
        {
            while (position < input.Length)
            {
                var length = NormalizePrefix(input, position, out var replacement);
                if (!(replacement.Length == 1 && replacement[0] == (byte)' '))
                {
                    break;
                }

                position += length;
            }
        }

        if (position == input.Length)
        {
            // All whitespace: SentencePiece outputs nothing, not even the dummy prefix.
            return new NormalizedText(string.Empty, text.Tracked ? [] : null, text.Tracked ? [] : null, 0, text.Budget);
        }

        var space = _escapeWhitespaces ? "\u2581" : " ";
        if (!_whitespaceAsSuffix && _addDummyPrefix)
        {
            chunks.Add((space, unitOfByte[position], unitOfByte[position], false));
        }

        var isPrevSpace = _removeExtraWhitespaces;
        while (position < input.Length)
        {
            var length = NormalizePrefix(input, position, out var replacement);
            var sp = replacement;
            while (isPrevSpace && sp.Length > 0 && sp[0] == (byte)' ')
            {
                sp = sp[1..];
            }

            if (sp.Length > 0)
            {
                var from = unitOfByte[position];
                var to = unitOfByte[position + length];
                var output = Encoding.UTF8.GetString(sp);
                if (_escapeWhitespaces)
                {
                    output = output.Replace(' ', SpaceSymbol);
                }

                var copy = output.Length == to - from && string.CompareOrdinal(output, 0, s, from, to - from) == 0;
                chunks.Add((output, from, to, copy));
                isPrevSpace = sp[^1] == (byte)' ';
            }

            position += length;
            if (!_removeExtraWhitespaces)
            {
                isPrevSpace = false;
            }
        }

        if (_removeExtraWhitespaces)
        {
            // Trailing spaces (escaped or not) go, whichever chunks they came from.
            var trailing = _escapeWhitespaces ? SpaceSymbol : ' ';
            while (chunks.Count > 0)
            {
                var (output, from, to, copy) = chunks[^1];
                var trimmed = output.TrimEnd(trailing);
                if (trimmed.Length == output.Length)
                {
                    break;
                }

                chunks.RemoveAt(chunks.Count - 1);
                if (trimmed.Length > 0)
                {
                    chunks.Add(copy ? (trimmed, from, from + trimmed.Length, true) : (trimmed, from, to, false));
                    break;
                }
            }
        }

        if (_whitespaceAsSuffix && _addDummyPrefix)
        {
            chunks.Add((space, s.Length, s.Length, false));
        }

        var rewriter = text.Rewrite(s.Length + 8);
        foreach (var (output, from, to, copy) in chunks)
        {
            if (copy)
            {
                rewriter.Copy(from, to);
            }
            else
            {
                rewriter.Emit(output, from, to);
            }
        }

        return rewriter.ToText();
    }

    /// <summary>
    /// normalizer.cc's NormalizePrefix: a user-defined piece (longest) as it is, else the longest rule of the map,
    /// else one character unchanged. Returns the input bytes consumed.
    /// </summary>
    private int NormalizePrefix(byte[] input, int position, out ReadOnlySpan<byte> replacement)
    {
        var user = MatchUserDefined(input, position);
        if (user > 0)
        {
            replacement = input.AsSpan(position, user);
            return user;
        }

        if (_map is not null)
        {
            var length = _map.MatchLongest(input.AsSpan(position), out replacement);
            if (length > 0)
            {
                return length;
            }
        }

        var charLength = PrecompiledNormalizer.Utf8CharLength(input, position);
        replacement = input.AsSpan(position, charLength);
        return charLength;
    }

    private int MatchUserDefined(byte[] input, int position)
    {
        if (_userChildren.Count == 0)
        {
            return 0;
        }

        var longest = 0;
        var node = 0;
        for (var i = position; i < input.Length; i++)
        {
            if (!_userChildren.TryGetValue((node << 8) | input[i], out node))
            {
                break;
            }

            if (_userEnds[node])
            {
                longest = i + 1 - position;
            }
        }

        return longest;
    }
}
