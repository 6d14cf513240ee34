using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// GPT-2's byte-level step: optionally a space before each piece, optionally GPT-2's word regex, then every UTF-8
/// byte written as its printable stand-in character (ByteLevelAlphabet), so the BPE model sees bytes.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : IPreTokenizer
{
    private static readonly PatternMatcher Gpt2Words = PatternMatcher.FromRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", "The ByteLevel pre-tokenizer's GPT-2 word pattern");

    public void PreTokenize(List<NormalizedText> pieces)
    {
        if (addPrefixSpace)
        {
            for (var i = 0; i < pieces.Count; i++)
            {
                if (!pieces[i].Text.StartsWith(' '))
                {
                    var rewriter = pieces[i].Rewrite(pieces[i].Length + 1);
                    rewriter.Emit(' ', 0, Math.Min(1, pieces[i].Length));
                    rewriter.Copy(0, pieces[i].Length);
                    pieces[i] = rewriter.ToText();
                }
            }
        }

        if (useRegex)
        {
            Splitter.SplitAll(pieces, Gpt2Words.Matches, SplitBehavior.Isolated);
        }

        for (var i = 0; i < pieces.Count; i++)
        {
            pieces[i] = ToBytes(pieces[i]);
        }
    }

    public static NormalizedText ToBytes(NormalizedText text)
    {
        var s = text.Text;
        if (!text.Tracked)
        {
            var bytes = Encoding.UTF8.GetBytes(s);
            // Each byte becomes one character: a chain of ByteLevel steps would double non-ASCII text each time.
            text.Budget?.Grow(bytes.Length - s.Length);
            return new NormalizedText(ByteLevelAlphabet.Encode(bytes), null, null, text.Offset, text.Budget);
        }

        var rewriter = text.Rewrite(s.Length * 2);
        Span<byte> utf8 = stackalloc byte[4];
        Span<char> chars = stackalloc char[4];
        for (var i = 0; i < s.Length;)
        {
            var width = char.IsSurrogatePair(s, i) ? 2 : 1;
            var n = Encoding.UTF8.GetBytes(s.AsSpan(i, width), utf8);
            for (var k = 0; k < n; k++) chars[k] = ByteLevelAlphabet.ByteToChar(utf8[k]);
            rewriter.Emit(chars[..n], i, i + width);
            i += width;
        }

        return rewriter.ToText();
    }
}
