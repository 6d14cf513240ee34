using System.Text;

namespace OnnxLM.Constraints;

/// <summary>
/// A regular expression over Unicode text compiled to a Thompson NFA over UTF-8 bytes (each character class becomes
/// the byte-range sequences of its encodings), walked as a DFA built lazily: each DFA state is a set of NFA states.
/// Working on bytes lets tokens that hold only part of a character be allowed exactly when some character completes them.
/// The NFA is bounded by <see cref="ConstraintLimits.MaxAutomatonSize"/>: a repetition is priced (its part's size times
/// its count) before it is built, so nested counts are refused before their product is allocated.
/// </summary>
internal sealed class RegexConstraint : AutomatonConstraint
{
    // An NFA state either reads one byte in [Lo, Hi] and goes to Next, or (Lo > Hi) moves without input to Next and to Epsilon2 when ≥ 0.
    private readonly List<(byte Lo, byte Hi, int Next, int Epsilon2)> _nfa = [];
    private readonly int _acceptNfa;
    private readonly string _pattern;
    private readonly string _source;
    private int _pos;

    // Measuring: states are counted in _measured, not built, and a repetition multiplies instead of copying, so the
    // size of what a count repeats is known before any copy exists (a nested count is priced in microseconds).
    private bool _measuring;
    private long _measured;

    /// <param name="pattern">The regular expression.</param>
    /// <param name="limits">The size limits (null: <see cref="ConstraintLimits.Default"/>).</param>
    /// <param name="parameterName">The factory parameter the pattern came from (pattern, choices, schema), named by errors.</param>
    /// <param name="source">What the pattern is in the user's words, for errors ("The JSON schema"); null: the regular expression itself.</param>
    public RegexConstraint(string pattern, ConstraintLimits? limits = null, string parameterName = "pattern", string? source = null)
        : base(limits ?? ConstraintLimits.Default, parameterName)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        _pattern = pattern;
        _source = source ?? $"The regular expression '{(pattern.Length > 200 ? pattern[..200] + "…" : pattern)}'";
        var (start, end) = ParseAlternation();
        if (_pos != pattern.Length) throw Error($"unexpected '{pattern[_pos]}'");
        _acceptNfa = end;
        StartState = Intern(Closure([start]));
    }

    protected override string Describe => _source;

    public static string Escape(string text)
    {
        var sb = new StringBuilder();
        foreach (var c in text)
        {
            if ("\\.[]{}()*+?|^$".Contains(c)) sb.Append('\\');
            sb.Append(c);
        }

        return sb.ToString();
    }

    protected override int? Compute(int state, byte b)
    {
        var targets = new List<int>();
        foreach (var s in Members(state))
        {
            var (lo, hi, next, _) = _nfa[s];
            if (lo <= hi && b >= lo && b <= hi) targets.Add(next);
        }

        return targets.Count == 0 ? null : Intern(Closure(targets));
    }

    private static bool IsEpsilon((byte Lo, byte Hi, int Next, int Epsilon2) state) => state.Lo > state.Hi;

    private int Intern(int[] states)
    {
        var complete = Array.BinarySearch(states, _acceptNfa) >= 0;
        // Final: complete, and no NFA state left that reads a byte.
        return Intern(states, complete, complete && states.All(s => IsEpsilon(_nfa[s])));
    }

    private int[] Closure(IEnumerable<int> seeds)
    {
        var seen = new HashSet<int>();
        var stack = new Stack<int>(seeds);
        while (stack.Count > 0)
        {
            var s = stack.Pop();
            if (!seen.Add(s)) continue;
            var state = _nfa[s];
            if (IsEpsilon(state))
            {
                if (state.Next >= 0) stack.Push(state.Next);
                if (state.Epsilon2 >= 0) stack.Push(state.Epsilon2);
            }
        }

        var result = seen.ToArray();
        Array.Sort(result);
        return result;
    }

    /// <summary>An epsilon state (moves without input) to <paramref name="next"/> and <paramref name="e2"/> (−1: not yet).</summary>
    private int NewState(int next = -1, int e2 = -1)
    {
        Reserve(1);
        if (_measuring) return Count(1);
        _nfa.Add((1, 0, next, e2));
        return _nfa.Count - 1;
    }

    private int NewByteState(byte lo, byte hi, int next)
    {
        Reserve(1);
        if (_measuring) return Count(1);
        _nfa.Add((lo, hi, next, -1));
        return _nfa.Count - 1;
    }

    /// <summary>Refuses the pattern when <paramref name="states"/> more NFA states would pass the size limit.</summary>
    private void Reserve(long states)
    {
        var size = _measuring ? _measured : _nfa.Count;
        if (size + states <= MaxAutomatonSize) return;
        throw TooLarge(nameof(ConstraintLimits.MaxAutomatonSize), MaxAutomatonSize,
            $"{_source} expands to more than {MaxAutomatonSize:N0} automaton states (at least {size + states:N0}, near position {_pos}); a repetition {{m,n}} copies what it repeats n times, so nested counts multiply.");
    }

    /// <summary>While measuring: counts <paramref name="states"/> (already reserved) and returns a placeholder state.</summary>
    private int Count(long states)
    {
        _measured += states;
        return -1;
    }

    /// <summary>The NFA states the atom at the position would take, counted without building it; the position moves past it.</summary>
    private long MeasureAtom()
    {
        var outer = _measuring;
        if (!outer) (_measuring, _measured) = (true, _nfa.Count);
        var before = _measured;
        try
        {
            ParseAtom();
            return _measured - before;
        }
        finally
        {
            _measuring = outer;
        }
    }

    /// <summary>
    /// How many more copies of its atom the count at the position makes (0 for none, for <c>* + ?</c> which reuse the
    /// atom, and for a count that does not parse: the real parse reports it).
    /// </summary>
    private int CopiesAt(int pos)
    {
        if (pos >= _pattern.Length || _pattern[pos] != '{') return 0;
        var close = _pattern.IndexOf('}', pos);
        if (close < 0) return 0;
        var spec = _pattern[(pos + 1)..close].Split(',');
        if (spec.Length > 2 || !int.TryParse(spec[0], out var min) || min is < 0 or > 1000) return 0;
        if (spec.Length == 1) return min;
        return spec[1].Length == 0 ? min + 1 : int.TryParse(spec[1], out var max) && max is >= 0 and <= 1000 ? Math.Max(min, max) : 0;
    }

    /// <summary>Points an epsilon state's first free edge at <paramref name="next"/>.</summary>
    private void Patch(int state, int next)
    {
        if (_measuring) return;
        var (lo, hi, n, e2) = _nfa[state];
        _nfa[state] = n < 0 ? (lo, hi, next, e2) : (lo, hi, n, next);
    }

    private InvalidOptionException Error(string what) => new("pattern", $"Regular expression '{_pattern}' at {_pos}: {what}.");

    // Fragments are (start, end) where end is an epsilon state with no outgoing edge yet.
    private (int Start, int End) ParseAlternation()
    {
        var first = ParseConcatenation();
        if (_pos >= _pattern.Length || _pattern[_pos] != '|') return first;
        var end = NewState();
        var branches = new List<(int, int)> { first };
        while (_pos < _pattern.Length && _pattern[_pos] == '|')
        {
            _pos++;
            branches.Add(ParseConcatenation());
        }

        // A chain of splits into every branch.
        var start = NewState();
        var split = start;
        for (var i = 0; i < branches.Count; i++)
        {
            Patch(branches[i].Item2, end);
            if (i == branches.Count - 1)
            {
                Patch(split, branches[i].Item1);
            }
            else
            {
                var nextSplit = NewState();
                Patch(split, branches[i].Item1);
                Patch(split, nextSplit);
                split = nextSplit;
            }
        }

        return (start, end);
    }

    private (int Start, int End) ParseConcatenation()
    {
        var start = NewState();
        var end = start;
        while (_pos < _pattern.Length && _pattern[_pos] is not ('|' or ')'))
        {
            var (s, e) = ParseRepeat();
            Patch(end, s);
            end = e;
        }

        return (start, end);
    }

    private (int Start, int End) ParseRepeat()
    {
        var atomStart = _pos;
        // Measured first, so a count is priced before even its first copy is built.
        var atomSize = MeasureAtom();
        if (!_measuring)
        {
            var copies = CopiesAt(_pos);
            Reserve(atomSize * (copies + 1) + copies + 3);
            _pos = atomStart;
        }

        var (s, e) = _measuring ? (-1, -1) : ParseAtom();
        while (_pos < _pattern.Length && _pattern[_pos] is '*' or '+' or '?' or '{')
        {
            var op = _pattern[_pos++];
            switch (op)
            {
                case '*':
                {
                    var loop = NewState(next: s);
                    var end = NewState();
                    Patch(loop, end);
                    Patch(e, loop);
                    (s, e) = (loop, end);
                    break;
                }

                case '+':
                {
                    var loop = NewState(next: s);
                    var end = NewState();
                    Patch(loop, end);
                    Patch(e, loop);
                    e = end;
                    break;
                }

                case '?':
                {
                    var split = NewState(next: s);
                    var end = NewState();
                    Patch(split, end);
                    Patch(e, end);
                    (s, e) = (split, end);
                    break;
                }

                default:
                {
                    var close = _pattern.IndexOf('}', _pos);
                    if (close < 0) throw Error("'{' without '}'");
                    var spec = _pattern[_pos..close].Split(',');
                    _pos = close + 1;
                    if (!int.TryParse(spec[0], out var min) || min < 0 || spec.Length > 2) throw Error("bad {m,n}");
                    int? max = spec.Length == 1 ? min : spec[1].Length == 0 ? null : int.TryParse(spec[1], out var m) && m >= min ? m : throw Error("bad {m,n}");
                    if ((max ?? min) > 1000) throw Error("repetition counts above 1000 are not supported");
                    (s, e) = Repeat(atomStart, atomSize, min, max);
                    break;
                }
            }
        }

        return (s, e);
    }

    /// <summary>{m,n}: the atom starting at <paramref name="atomStart"/> re-parsed m (then n − m optional) times.</summary>
    /// <param name="atomStart">Where the atom starts in the pattern.</param>
    /// <param name="min">m.</param>
    /// <param name="max">n; null: no upper bound.</param>
    /// <param name="atomSize">The NFA states one parse of the atom took, so the copies are priced before any is built.</param>
    private (int Start, int End) Repeat(int atomStart, long atomSize, int min, int? max)
    {
        // The copies, a split before each optional one (or a loop and its exit), a start and an exit: exactly what is
        // built below. Counts are ≤ 1000 and atomSize ≤ the limit, so this cannot overflow a long.
        var cost = atomSize * (max ?? min + 1) + (max is { } m ? m - min : 2) + 2;
        Reserve(cost);
        if (_measuring) return (Count(cost), -1);
        var after = _pos;
        var start = NewState();
        var end = start;
        (int, int) Again()
        {
            var saved = _pos;
            _pos = atomStart;
            var fragment = ParseAtom();
            _pos = saved;
            return fragment;
        }

        for (var i = 0; i < min; i++)
        {
            var (s, e) = Again();
            Patch(end, s);
            end = e;
        }

        if (max is null)
        {
            var (s, e) = Again();
            var loop = NewState(next: s);
            var exit = NewState();
            Patch(loop, exit);
            Patch(e, loop);
            Patch(end, loop);
            end = exit;
        }
        else
        {
            var exit = NewState();
            for (var i = min; i < max; i++)
            {
                var (s, e) = Again();
                var split = NewState(next: s);
                Patch(split, exit);
                Patch(end, split);
                end = e;
            }

            Patch(end, exit);
            end = exit;
        }

        _pos = after;
        return (start, end);
    }

    private (int Start, int End) ParseAtom()
    {
        if (_pos >= _pattern.Length) throw Error("unexpected end");
        var c = _pattern[_pos];
        switch (c)
        {
            case '(':
                _pos++;
                if (_pos < _pattern.Length && _pattern[_pos] == '?')
                {
                    if (_pos + 1 < _pattern.Length && _pattern[_pos + 1] == ':') _pos += 2;
                    else throw Error("lookaround and named groups are not supported");
                }

                var inner = ParseAlternation();
                if (_pos >= _pattern.Length || _pattern[_pos] != ')') throw Error("missing ')'");
                _pos++;
                return inner;
            case '[':
                _pos++;
                return Single(ParseClass());
            case '.':
                _pos++;
                return Single(CharSet.Of('\n').Negate());
            case '\\':
                _pos++;
                return Single(ParseEscape());
            case '^' or '$':
                throw Error("anchors are implicit (the whole output matches); remove '^'/'$'");
            case '*' or '+' or '?' or '{':
                throw Error($"nothing to repeat before '{c}'");
            default:
                return Single(CharSet.Of(ReadCodePoint()));
        }
    }

    /// <summary>One character of the pattern (a surrogate pair is one), as a code point.</summary>
    private int ReadCodePoint()
    {
        var c = _pattern[_pos++];
        if (char.IsHighSurrogate(c) && _pos < _pattern.Length && char.IsLowSurrogate(_pattern[_pos])) return char.ConvertToUtf32(c, _pattern[_pos++]);
        if (char.IsSurrogate(c)) throw Error("a lone surrogate is not a character");
        return c;
    }

    /// <summary>A fragment reading one character of <paramref name="set"/>: a branch per UTF-8 byte-range sequence.</summary>
    private (int, int) Single(CharSet set)
    {
        var end = NewState();
        var sequences = set.Utf8Sequences();
        if (sequences.Count == 0) return (NewState(), end); // an empty class: matches nothing
        var start = -1;
        var previousSplit = -1;
        foreach (var sequence in sequences)
        {
            var next = end;
            for (var k = sequence.Length - 1; k >= 0; k--) next = NewByteState(sequence[k].Lo, sequence[k].Hi, next);
            var split = NewState(next);
            if (previousSplit >= 0) Patch(previousSplit, split);
            else start = split;
            previousSplit = split;
        }

        return (start, end);
    }

    private static readonly CharSet Digits = CharSet.Range('0', '9');
    private static readonly CharSet Word = CharSet.Union([('0', '9'), ('A', 'Z'), ('a', 'z'), ('_', '_')]);
    private static readonly CharSet Space = CharSet.Union([(' ', ' '), ('\t', '\r')]); // \t \n \v \f \r

    /// <summary>After a backslash: a class escape (\d \w \s and negations) or one escaped character.</summary>
    private CharSet ParseEscape()
    {
        if (_pos >= _pattern.Length) throw Error("trailing '\\'");
        var e = _pattern[_pos];
        switch (e)
        {
            case 'd': _pos++; return Digits;
            case 'D': _pos++; return Digits.Negate();
            case 'w': _pos++; return Word;
            case 'W': _pos++; return Word.Negate();
            case 's': _pos++; return Space;
            case 'S': _pos++; return Space.Negate();
            default: return CharSet.Of(ParseEscapedChar());
        }
    }

    /// <summary>After a backslash: \n \t \r \f \v \xHH \uHHHH, or a punctuation character standing for itself.</summary>
    private int ParseEscapedChar()
    {
        if (_pos >= _pattern.Length) throw Error("trailing '\\'");
        var e = _pattern[_pos++];
        return e switch
        {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'f' => '\f',
            'v' => '\v',
            'x' => Hex(2),
            'u' => Hex(4),
            _ when char.IsAsciiLetterOrDigit(e) => throw Error($"unsupported escape '\\{e}'"),
            _ => e,
        };
    }

    /// <summary>The <paramref name="digits"/> hex digits after <c>\x</c> or <c>\u</c>.</summary>
    private int Hex(int digits)
    {
        if (_pos + digits > _pattern.Length || !int.TryParse(_pattern.AsSpan(_pos, digits), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var value))
        {
            throw Error($"'\\{_pattern[_pos - 1]}' needs {digits} hex digits");
        }

        _pos += digits;
        return value;
    }

    private CharSet ParseClass()
    {
        var negate = _pos < _pattern.Length && _pattern[_pos] == '^';
        if (negate) _pos++;
        var set = CharSet.Empty;
        var first = true;
        while (true)
        {
            if (_pos >= _pattern.Length) throw Error("missing ']'");
            if (_pattern[_pos] == ']' && !first)
            {
                _pos++;
                break;
            }

            first = false;
            if (_pattern[_pos] == '\\' && _pos + 1 < _pattern.Length && _pattern[_pos + 1] is 'd' or 'D' or 'w' or 'W' or 's' or 'S')
            {
                _pos++;
                set = set.Union(ParseEscape());
                continue;
            }

            var lo = ClassChar();
            if (_pos + 1 < _pattern.Length && _pattern[_pos] == '-' && _pattern[_pos + 1] != ']')
            {
                _pos++;
                var hi = ClassChar();
                if (hi < lo) throw Error("a range runs backwards");
                set = set.Union(CharSet.Range(lo, hi));
            }
            else
            {
                set = set.Union(CharSet.Of(lo));
            }
        }

        return negate ? set.Negate() : set;
    }

    private int ClassChar()
    {
        if (_pattern[_pos] != '\\') return ReadCodePoint();
        _pos++;
        return ParseEscapedChar();
    }
}
