using System.Globalization;
using System.Text;

namespace OnnxLM.Constraints;

/// <summary>One element of a compiled grammar alternative: a byte in [Lo, Hi], or a reference to a rule.</summary>
internal readonly record struct GrammarElement(byte Lo, byte Hi, int Rule)
{
    public bool IsRule => Rule >= 0;

    public static GrammarElement Byte(byte lo, byte hi) => new(lo, hi, -1);

    public static GrammarElement Ref(int rule) => new(0, 0, rule);
}

/// <summary>
/// Reads a grammar in llama.cpp's GBNF into rules over UTF-8 bytes: each rule is a list of alternatives, each a
/// sequence of byte ranges and rule references. Literals become their bytes, character classes the byte-range
/// sequences of their encodings, and groups and repetitions (<c>* + ? {m,n}</c>) become rules of their own.
/// Errors name the line and column. The rules' total size, repetitions written out, is bounded by
/// <see cref="ConstraintLimits.MaxAutomatonSize"/> and priced before each repetition is built.
/// </summary>
internal sealed class GbnfParser
{
    private const int MaxRepeat = 1000;

    private readonly string _text;
    private readonly List<List<List<GrammarElement>>> _rules = [];
    private readonly List<string> _names = [];
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly HashSet<int> _defined = [];
    private readonly Dictionary<int, int> _firstUse = []; // rule → text position of its first reference
    private readonly int _maxElements;
    private long _elements;
    private int _pos;

    private GbnfParser(string text, int maxElements)
    {
        _text = text;
        _maxElements = maxElements;
    }

    /// <summary>The rules by number, each a list of alternatives.</summary>
    public IReadOnlyList<List<List<GrammarElement>>> Rules => _rules;

    /// <summary>The rules' names (generated rules get "name-1"-style names after the rule they came from).</summary>
    public IReadOnlyList<string> Names => _names;

    /// <param name="text">The GBNF text.</param>
    /// <param name="maxElements">The most elements all rules may hold (<see cref="ConstraintLimits.MaxAutomatonSize"/>).</param>
    /// <exception cref="ArgumentException">The grammar does not parse.</exception>
    /// <exception cref="ConstraintTooLargeException">The rules would hold more than <paramref name="maxElements"/> elements.</exception>
    public static GbnfParser Parse(string text, int maxElements = ConstraintLimits.DefaultMaxAutomatonSize)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxElements, 1);
        var parser = new GbnfParser(text, maxElements);
        parser.ParseGrammar();
        return parser;
    }

    public int? RuleId(string name) => _ids.TryGetValue(name, out var id) ? id : null;

    private void ParseGrammar()
    {
        SkipSpace(newlines: true);
        while (_pos < _text.Length)
        {
            var start = _pos;
            var name = ParseName();
            SkipSpace(newlines: false);
            if (!Match("::=")) throw Error("expected '::=' after the rule name");
            SkipSpace(newlines: true);
            var id = Id(name);
            if (!_defined.Add(id)) throw Error($"rule '{name}' is defined twice", start);
            _rules[id] = ParseAlternatives(name, nested: false);
            SkipSpace(newlines: true);
        }

        foreach (var (rule, position) in _firstUse)
        {
            if (!_defined.Contains(rule)) throw Error($"rule '{_names[rule]}' is used but never defined", position);
        }
    }

    private int Id(string name)
    {
        if (_ids.TryGetValue(name, out var id)) return id;
        _ids[name] = _rules.Count;
        _names.Add(name);
        _rules.Add([]);
        return _rules.Count - 1;
    }

    private int NewRule(string owner, List<List<GrammarElement>> alternatives)
    {
        var id = _rules.Count;
        _names.Add($"{owner}-{id}");
        _rules.Add(alternatives);
        _defined.Add(id);
        return id;
    }

    private List<List<GrammarElement>> ParseAlternatives(string owner, bool nested)
    {
        var alternatives = new List<List<GrammarElement>> { ParseSequence(owner, nested) };
        while (true)
        {
            // An alternative may continue on the next line when that line starts with '|'.
            var save = _pos;
            SkipSpace(newlines: true);
            if (_pos < _text.Length && _text[_pos] == '|')
            {
                _pos++;
                SkipSpace(newlines: true);
                alternatives.Add(ParseSequence(owner, nested));
                continue;
            }

            _pos = save;
            return alternatives;
        }
    }

    private List<GrammarElement> ParseSequence(string owner, bool nested)
    {
        var sequence = new List<GrammarElement>();
        while (true)
        {
            SkipSpace(newlines: nested);
            if (_pos >= _text.Length) return sequence;
            var c = _text[_pos];
            if (c is '|' or ')') return sequence;
            if (c is '\n' or '\r')
            {
                // At the top level a rule goes on over line breaks until the next rule ("name ::=") or a '|' line.
                var save = _pos;
                SkipSpace(newlines: true);
                var ends = _pos >= _text.Length || _text[_pos] == '|' || StartsRuleDefinition();
                if (ends)
                {
                    _pos = save;
                    return sequence;
                }

                continue;
            }

            var item = ParseItem(owner);
            SkipSpace(newlines: false);
            if (_pos < _text.Length && _text[_pos] is '*' or '+' or '?' or '{') item = ParseRepetition(owner, item);
            sequence.AddRange(item);
        }
    }

    /// <summary>Whether the text at the position is "name ::=" (the next rule), so a continued line is not read into this one.</summary>
    private bool StartsRuleDefinition()
    {
        var p = _pos;
        while (p < _text.Length && IsNameChar(_text[p])) p++;
        if (p == _pos) return false;
        while (p < _text.Length && _text[p] is ' ' or '\t') p++;
        return string.CompareOrdinal(_text, p, "::=", 0, 3) == 0;
    }

    private List<GrammarElement> ParseItem(string owner)
    {
        var c = _text[_pos];
        switch (c)
        {
            case '"':
                _pos++;
                return ParseLiteral();
            case '[':
                _pos++;
                return CharClass(owner, ParseClass());
            case '.':
                _pos++;
                return CharClass(owner, CharSet.All);
            case '(':
            {
                _pos++;
                SkipSpace(newlines: true);
                var alternatives = ParseAlternatives(owner, nested: true);
                SkipSpace(newlines: true);
                if (!Match(")")) throw Error("expected ')'");
                return alternatives.Count == 1 ? alternatives[0] : [GrammarElement.Ref(NewRule(owner, alternatives))];
            }

            default:
                if (!IsNameChar(c)) throw Error($"unexpected '{c}'");
                var position = _pos;
                Grow(1, position);
                var id = Id(ParseName());
                _firstUse.TryAdd(id, position);
                return [GrammarElement.Ref(id)];
        }
    }

    /// <summary>x*, x+, x?, x{m}, x{m,}, x{m,n}: x as one element (a rule when it is longer), repeated through new rules.</summary>
    private List<GrammarElement> ParseRepetition(string owner, List<GrammarElement> item)
    {
        var op = _text[_pos++];
        int min, max;
        switch (op)
        {
            case '*': (min, max) = (0, -1); break;
            case '+': (min, max) = (1, -1); break;
            case '?': (min, max) = (0, 1); break;
            default:
                SkipSpace(newlines: false);
                min = ParseCount();
                SkipSpace(newlines: false);
                max = min;
                if (Match(","))
                {
                    SkipSpace(newlines: false);
                    max = _pos < _text.Length && char.IsAsciiDigit(_text[_pos]) ? ParseCount() : -1;
                    SkipSpace(newlines: false);
                }

                if (!Match("}")) throw Error("expected '}' closing the repetition");
                if (max >= 0 && max < min) throw Error($"repetition {{{min},{max}}} has its maximum below its minimum");
                break;
        }

        // Priced before it is built: min copies, then a star rule (two alternatives, three elements) or max − min optional rules (up to three each).
        Grow(min + (max < 0 ? 3L : 3L * (max - min)) + 1, _pos);
        var one = item.Count == 1 ? item[0] : GrammarElement.Ref(NewRule(owner, [item]));
        var result = new List<GrammarElement>();
        for (var i = 0; i < min; i++) result.Add(one);
        if (max < 0)
        {
            // star ::= x star | (nothing)
            var star = NewRule(owner, []);
            _rules[star].Add([one, GrammarElement.Ref(star)]);
            _rules[star].Add([]);
            result.Add(GrammarElement.Ref(star));
        }
        else if (max > min)
        {
            // opt(k) ::= x opt(k-1) | (nothing), nested max − min deep
            var optional = -1;
            for (var k = 0; k < max - min; k++)
            {
                List<GrammarElement> taken = optional < 0 ? [one] : [one, GrammarElement.Ref(optional)];
                optional = NewRule(owner, [taken, []]);
            }

            result.Add(GrammarElement.Ref(optional));
        }

        return result;
    }

    private int ParseCount()
    {
        var start = _pos;
        while (_pos < _text.Length && char.IsAsciiDigit(_text[_pos])) _pos++;
        if (start == _pos) throw Error("expected a number in the repetition");
        if (!int.TryParse(_text.AsSpan(start, _pos - start), CultureInfo.InvariantCulture, out var n) || n > MaxRepeat)
        {
            throw Error($"repetition counts above {MaxRepeat} are not supported", start);
        }

        return n;
    }

    private List<GrammarElement> ParseLiteral()
    {
        var bytes = new List<GrammarElement>();
        Span<byte> buffer = stackalloc byte[4];
        while (true)
        {
            if (_pos >= _text.Length || _text[_pos] is '\n' or '\r') throw Error("unterminated string literal");
            if (_text[_pos] == '"')
            {
                _pos++;
                return bytes;
            }

            var codePoint = ParseChar();
            var length = new Rune(codePoint).EncodeToUtf8(buffer);
            Grow(length, _pos);
            foreach (var b in buffer[..length]) bytes.Add(GrammarElement.Byte(b, b));
        }
    }

    private CharSet ParseClass()
    {
        var negate = _pos < _text.Length && _text[_pos] == '^';
        if (negate) _pos++;
        var ranges = new List<(int, int)>();
        while (true)
        {
            if (_pos >= _text.Length || _text[_pos] is '\n' or '\r') throw Error("unterminated character class");
            if (_text[_pos] == ']')
            {
                _pos++;
                break;
            }

            var lo = ParseChar();
            if (_pos + 1 < _text.Length && _text[_pos] == '-' && _text[_pos + 1] != ']')
            {
                _pos++;
                var hi = ParseChar();
                if (hi < lo) throw Error("a character range runs backwards");
                ranges.Add((lo, hi));
            }
            else
            {
                ranges.Add((lo, lo));
            }
        }

        var set = CharSet.Union(ranges);
        return negate ? set.Negate() : set;
    }

    /// <summary>One character of a literal or class, escapes included, as a code point.</summary>
    private int ParseChar()
    {
        var c = _text[_pos++];
        if (c != '\\')
        {
            if (char.IsHighSurrogate(c) && _pos < _text.Length && char.IsLowSurrogate(_text[_pos])) return char.ConvertToUtf32(c, _text[_pos++]);
            if (char.IsSurrogate(c)) throw Error("a lone surrogate is not a character", _pos - 1);
            return c;
        }

        if (_pos >= _text.Length) throw Error("'\\' at the end of the grammar");
        var e = _text[_pos++];
        return e switch
        {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'x' => Hex(2),
            'u' => Hex(4),
            'U' => Hex(8),
            '\\' or '"' or '[' or ']' or '-' or '^' or '/' or '\'' => e,
            _ => throw Error($"unknown escape '\\{e}'", _pos - 2),
        };
    }

    private int Hex(int digits)
    {
        var start = _pos;
        if (_pos + digits > _text.Length || !int.TryParse(_text.AsSpan(_pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value)
            || value > CharSet.MaxCodePoint || value is >= 0xD800 and <= 0xDFFF)
        {
            throw Error($"expected {digits} hex digits naming a character", start);
        }

        _pos += digits;
        return value;
    }

    /// <summary>A character class as grammar elements: one byte range when it can be, else a rule of its byte sequences.</summary>
    private List<GrammarElement> CharClass(string owner, CharSet set)
    {
        var sequences = set.Utf8Sequences();
        Grow(sequences.Sum(x => (long)x.Length), _pos);
        if (sequences.Count == 1 && sequences[0].Length == 1) return [GrammarElement.Byte(sequences[0][0].Lo, sequences[0][0].Hi)];
        var alternatives = sequences.Select(s => s.Select(r => GrammarElement.Byte(r.Lo, r.Hi)).ToList()).ToList();
        return [GrammarElement.Ref(NewRule(owner, alternatives))];
    }

    private string ParseName()
    {
        var start = _pos;
        while (_pos < _text.Length && IsNameChar(_text[_pos])) _pos++;
        if (start == _pos) throw Error("expected a rule name");
        return _text[start.._pos];
    }

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';

    private bool Match(string s)
    {
        if (string.CompareOrdinal(_text, _pos, s, 0, s.Length) != 0) return false;
        _pos += s.Length;
        return true;
    }

    /// <summary>Skips blanks and # comments, and line breaks when <paramref name="newlines"/>.</summary>
    private void SkipSpace(bool newlines)
    {
        while (_pos < _text.Length)
        {
            var c = _text[_pos];
            if (c is ' ' or '\t' || (newlines && c is '\n' or '\r')) _pos++;
            else if (c == '#') { while (_pos < _text.Length && _text[_pos] is not ('\n' or '\r')) _pos++; }
            else return;
        }
    }

    /// <summary>Counts <paramref name="elements"/> more, refusing the grammar before they would pass the limit.</summary>
    private void Grow(long elements, int at)
    {
        _elements += elements;
        if (_elements <= _maxElements) return;
        throw new ConstraintTooLargeException(nameof(ConstraintLimits.MaxAutomatonSize), _maxElements,
            $"{Where(at)}: the grammar expands to more than {_maxElements.ToString("N0", CultureInfo.InvariantCulture)} elements (a repetition {{m,n}} writes out what it repeats up to n times).",
            "grammar");
    }

    /// <summary>"Grammar line L, column C" for a text position.</summary>
    private string Where(int at)
    {
        var position = Math.Min(at, _text.Length);
        var line = 1;
        var lineStart = 0;
        for (var i = 0; i < position; i++)
        {
            if (_text[i] == '\n') { line++; lineStart = i + 1; }
        }

        return $"Grammar line {line}, column {position - lineStart + 1}";
    }

    private InvalidOptionException Error(string what, int? at = null)
    {
        return new InvalidOptionException("grammar", $"{Where(at ?? _pos)}: {what}.");
    }
}
