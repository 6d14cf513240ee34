using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace OnnxLM.Tokenization;

/// <summary>
/// A tokenizer.json pattern (<c>{"String": ...}</c> or <c>{"Regex": ...}</c>) and its matches. Hugging Face runs its
/// regexes (Oniguruma) on code points, .NET on UTF-16 units, so <c>\p{L}</c> would miss a letter outside the BMP
/// that arrives as a surrogate pair: before matching, each such pair is replaced by one BMP character of the same
/// Unicode category, and match positions are mapped back.
/// </summary>
internal sealed class PatternMatcher
{
    private static readonly char[] Stand_ins = BuildStandIns();

    private readonly string? _literal;
    private readonly Regex? _regex;

    private PatternMatcher(string? literal, Regex? regex)
    {
        _literal = literal;
        _regex = regex;
    }

    public static PatternMatcher Literal(string s) => new(s, null);

    /// <exception cref="ArgumentException">The pattern is not a valid regular expression here.</exception>
    public static PatternMatcher FromRegex(string pattern) =>
        new(null, new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled));

    /// <summary>Non-overlapping matches, left to right, as [start, end) UTF-16 ranges of <paramref name="s"/>.</summary>
    public List<(int Start, int End)> Matches(string s)
    {
        var result = new List<(int, int)>();
        if (s.Length == 0)
        {
            return result;
        }

        if (_literal is not null)
        {
            if (_literal.Length == 0)
            {
                return result;
            }

            for (var i = s.IndexOf(_literal, StringComparison.Ordinal); i >= 0; i = s.IndexOf(_literal, i + _literal.Length, StringComparison.Ordinal))
            {
                result.Add((i, i + _literal.Length));
            }

            return result;
        }

        if (!HasSurrogates(s))
        {
            for (var m = _regex!.Match(s); m.Success; m = m.NextMatch())
            {
                result.Add((m.Index, m.Index + m.Length));
            }

            return result;
        }

        // Units of the stand-in string map to positions in s; position[k] is where stand-in unit k starts.
        var mapped = new StringBuilder(s.Length);
        var position = new List<int>(s.Length + 1);
        for (var i = 0; i < s.Length;)
        {
            position.Add(i);
            if (char.IsSurrogatePair(s, i))
            {
                mapped.Append(Stand_ins[(int)CharUnicodeInfo.GetUnicodeCategory(s, i)]);
                i += 2;
            }
            else
            {
                mapped.Append(s[i]);
                i++;
            }
        }

        position.Add(s.Length);
        for (var m = _regex!.Match(mapped.ToString()); m.Success; m = m.NextMatch())
        {
            result.Add((position[m.Index], position[m.Index + m.Length]));
        }

        return result;
    }

    private static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    /// <summary>
    /// For each category a BMP character of that category, taken from scripts no tokenizer pattern names literally
    /// (not ASCII, Latin-1, CJK or kana), so that only category classes, negations and <c>.</c> can tell it apart.
    /// </summary>
    private static char[] BuildStandIns()
    {
        var table = new char[32];
        var found = new bool[32];
        for (var c = 0xA000; c < 0xFFFE; c++)
        {
            if (c is >= 0xD800 and <= 0xF8FF or >= 0xF900 and <= 0xFAFF or >= 0xFF00 and <= 0xFFEF)
            {
                continue;
            }

            var category = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (!found[category])
            {
                table[category] = (char)c;
                found[category] = true;
            }
        }

        for (var c = 0x100; c < 0xA000; c++)
        {
            if (c is >= 0x2E80 and <= 0x9FFF)
            {
                continue;
            }

            var category = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (!found[category])
            {
                table[category] = (char)c;
                found[category] = true;
            }
        }

        // Private use and unassigned have BMP members in the ranges skipped above.
        table[(int)UnicodeCategory.PrivateUse] = '\uE000';
        table[(int)UnicodeCategory.OtherNotAssigned] = found[(int)UnicodeCategory.OtherNotAssigned] ? table[(int)UnicodeCategory.OtherNotAssigned] : '\uFFFF';
        return table;
    }
}
