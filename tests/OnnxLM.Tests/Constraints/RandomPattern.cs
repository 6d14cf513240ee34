using System.Globalization;
using System.Text;

namespace OnnxLM.Tests;

/// <summary>
/// A random regular language as a small syntax tree that renders both as a regex and as a GBNF grammar, and matches
/// code points itself by backtracking: the test's own reference, independent of the library's automata.
/// </summary>
internal abstract record RandomPattern
{
    // Characters the patterns draw from: ASCII, Latin-1, Greek, CJK and one astral character, so every UTF-8 length appears.
    private static readonly int[] Alphabet = ['a', 'b', 'e', 'n', 't', '0', '7', ' ', ',', 'é', 'ü', 'λ', 'Ω', '日', 0x1F600];

    public sealed record Literal(int[] CodePoints) : RandomPattern;

    public sealed record Class(List<(int Lo, int Hi)> Ranges, bool Negated) : RandomPattern;

    public sealed record Sequence(List<RandomPattern> Items) : RandomPattern;

    public sealed record Alternation(List<RandomPattern> Branches) : RandomPattern;

    public sealed record Repeat(RandomPattern Item, int Min, int Max) : RandomPattern; // Max −1: unbounded

    public static RandomPattern Generate(Random random, int depth = 0)
    {
        var pick = depth >= 3 ? random.Next(2) : random.Next(5);
        switch (pick)
        {
            case 0:
                return new Literal([.. Enumerable.Range(0, random.Next(1, 4)).Select(_ => Alphabet[random.Next(Alphabet.Length)])]);
            case 1:
            {
                var ranges = new List<(int, int)>();
                for (var i = random.Next(1, 3); i > 0; i--)
                {
                    var lo = Alphabet[random.Next(Alphabet.Length)];
                    ranges.Add((lo, lo + random.Next(0, 3)));
                }

                return new Class(ranges, random.Next(6) == 0);
            }

            case 2:
                return new Sequence([.. Enumerable.Range(0, random.Next(2, 4)).Select(_ => Generate(random, depth + 1))]);
            case 3:
                return new Alternation([.. Enumerable.Range(0, random.Next(2, 4)).Select(_ => Generate(random, depth + 1))]);
            default:
            {
                var min = random.Next(0, 3);
                var max = random.Next(4) == 0 ? -1 : min + random.Next(0, 3);
                return new Repeat(Generate(random, depth + 1), min, max);
            }
        }
    }

    public string ToRegex() => this switch
    {
        Literal l => string.Concat(l.CodePoints.Select(RegexChar)),
        Class c => $"[{(c.Negated ? "^" : "")}{string.Concat(c.Ranges.Select(r => r.Lo == r.Hi ? RegexChar(r.Lo) : $"{RegexChar(r.Lo)}-{RegexChar(r.Hi)}"))}]",
        Sequence s => string.Concat(s.Items.Select(i => $"(?:{i.ToRegex()})")),
        Alternation a => $"(?:{string.Join('|', a.Branches.Select(b => b.ToRegex()))})",
        Repeat r => $"(?:{r.Item.ToRegex()}){{{r.Min},{(r.Max < 0 ? "" : r.Max.ToString(CultureInfo.InvariantCulture))}}}",
        _ => throw new InvalidOperationException(),
    };

    /// <summary>The pattern as a GBNF grammar whose root is the pattern.</summary>
    public string ToGbnf() => $"root ::= {Gbnf()}\n";

    private string Gbnf() => this switch
    {
        Literal l => $"\"{string.Concat(l.CodePoints.Select(GbnfChar))}\"",
        Class c => $"[{(c.Negated ? "^" : "")}{string.Concat(c.Ranges.Select(r => r.Lo == r.Hi ? GbnfChar(r.Lo) : $"{GbnfChar(r.Lo)}-{GbnfChar(r.Hi)}"))}]",
        Sequence s => $"({string.Join(' ', s.Items.Select(i => i.Gbnf()))})",
        Alternation a => $"({string.Join(" | ", a.Branches.Select(b => b.Gbnf()))})",
        Repeat r => $"({r.Item.Gbnf()}){{{r.Min},{(r.Max < 0 ? "" : r.Max.ToString(CultureInfo.InvariantCulture))}}}",
        _ => throw new InvalidOperationException(),
    };

    private static string RegexChar(int cp) => cp < 0x80 && !char.IsAsciiLetterOrDigit((char)cp) && cp != ' ' ? $"\\x{cp:X2}" : char.ConvertFromUtf32(cp);

    private static string GbnfChar(int cp) => cp < 0x80 && !char.IsAsciiLetterOrDigit((char)cp) && cp != ' ' ? $"\\x{cp:X2}" : char.ConvertFromUtf32(cp);

    /// <summary>Whether the whole text is in the language.</summary>
    public bool Matches(string text)
    {
        var cps = text.EnumerateRunes().Select(r => r.Value).ToArray();
        return Ends(cps, 0).Contains(cps.Length);
    }

    /// <summary>Every position where a match of this pattern starting at <paramref name="start"/> can end.</summary>
    private HashSet<int> Ends(int[] text, int start)
    {
        switch (this)
        {
            case Literal l:
                return start + l.CodePoints.Length <= text.Length && text.AsSpan(start, l.CodePoints.Length).SequenceEqual(l.CodePoints) ? [start + l.CodePoints.Length] : [];
            case Class c:
                if (start >= text.Length) return [];
                var inside = c.Ranges.Any(r => text[start] >= r.Lo && text[start] <= r.Hi);
                return inside != c.Negated ? [start + 1] : [];
            case Sequence s:
            {
                var positions = new HashSet<int> { start };
                foreach (var item in s.Items) positions = [.. positions.SelectMany(p => item.Ends(text, p))];
                return positions;
            }

            case Alternation a:
                return [.. a.Branches.SelectMany(b => b.Ends(text, start))];
            case Repeat r:
            {
                var result = new HashSet<int>();
                var frontier = new HashSet<int> { start };
                for (var count = 0; frontier.Count > 0 && (r.Max < 0 || count <= r.Max) && count <= text.Length + r.Min; count++)
                {
                    if (count >= r.Min) result.UnionWith(frontier);
                    if (r.Max >= 0 && count == r.Max) break;
                    frontier = [.. frontier.SelectMany(p => r.Item.Ends(text, p))];
                }

                return result;
            }

            default:
                throw new InvalidOperationException();
        }
    }

    public override string ToString() => ToRegex();
}

/// <summary>The bytes a token adds to generated text, worked out by the test from the token's piece (GPT-2's byte table, byte-fallback pieces).</summary>
internal static class ReferenceTokenBytes
{
    private static readonly Dictionary<char, byte> Gpt2 = BuildGpt2();

    public static byte[]? Of(TextTokenizer tokenizer, int id)
    {
        if (tokenizer.IsSpecialToken(id)) return null;
        var text = tokenizer.TokenText(id);
        if (text.Length == 0) return null;
        if (!text.Contains('\uFFFD')) return Encoding.UTF8.GetBytes(text);
        var piece = tokenizer.TokenToPiece(id);
        if (piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>') return [byte.Parse(piece.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)];
        var bytes = new byte[piece.Length];
        for (var i = 0; i < piece.Length; i++)
        {
            if (!Gpt2.TryGetValue(piece[i], out bytes[i])) return null;
        }

        return bytes;
    }

    // GPT-2's table: printable Latin-1 bytes stand for themselves, the other 68 bytes for U+0100 onwards in byte order.
    private static Dictionary<char, byte> BuildGpt2()
    {
        var table = new Dictionary<char, byte>();
        var next = 0x100;
        for (var b = 0; b < 256; b++)
        {
            var printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            table[printable ? (char)b : (char)next++] = (byte)b;
        }

        return table;
    }
}
