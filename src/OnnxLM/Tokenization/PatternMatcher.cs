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
/// <remarks>
/// A regex comes from the tokenizer file, so it may backtrack catastrophically (<c>(a+)+$</c> on 40 "a"s and a "b"
/// takes minutes). A pattern the non-backtracking engine accepts runs there, in time linear in the text; it finds the
/// same matches as the backtracking engine. Patterns it refuses (lookaround such as GPT-2's <c>\s+(?!\S)</c>,
/// backreferences, atomic groups) run on the backtracking engine with <see cref="TextTokenizer.RegexMatchTimeout"/> per match.
/// </remarks>
internal sealed class PatternMatcher
{
    private static readonly char[] Stand_ins = BuildStandIns();

    private readonly string? _literal;
    private readonly Regex? _regex;
    private readonly string _stage;

    private PatternMatcher(string? literal, Regex? regex, string stage)
    {
        _literal = literal;
        _regex = regex;
        _stage = stage;
    }

    public static PatternMatcher Literal(string s) => new(s, null, string.Empty);

    /// <param name="pattern">The regular expression.</param>
    /// <param name="stage">Where it comes from (the tokenizer file and field), named when a match runs too long.</param>
    /// <exception cref="ArgumentException">The pattern is not a valid regular expression here.</exception>
    public static PatternMatcher FromRegex(string pattern, string stage)
    {
        Regex regex;
        try
        {
            regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
        }
        catch (NotSupportedException)
        {
            // Lookaround, backreferences, atomic groups: only the backtracking engine runs them, so it runs with a deadline.
            regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, TextTokenizer.RegexMatchTimeout);
        }

        return new(null, regex, stage);
    }

    /// <summary>Whether the pattern runs on the backtracking engine (with a match timeout) rather than the linear one.</summary>
    public bool Backtracks => _regex is { } r && (r.Options & RegexOptions.NonBacktracking) == 0;

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

        try
        {
            return HasSurrogates(s) ? MatchesMapped(s, result) : MatchesPlain(s, result);
        }
        catch (RegexMatchTimeoutException e)
        {
            throw new TokenizationLimitException(_stage,
                $"{_stage}: the regex {_regex} took longer than {TextTokenizer.RegexMatchTimeout.TotalSeconds:0.###} s on one match in a text of {s.Length:N0} characters; " +
                "it backtracks catastrophically on this input. Fix the pattern in the tokenizer file (no nested quantifiers such as (a+)+).", e);
        }
    }

    private List<(int Start, int End)> MatchesPlain(string s, List<(int Start, int End)> result)
    {
        for (var m = _regex!.Match(s); m.Success; m = m.NextMatch())
        {
            result.Add((m.Index, m.Index + m.Length));
        }

        return result;
    }

    private List<(int Start, int End)> MatchesMapped(string s, List<(int Start, int End)> result)
    {
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
