using System.Text;

namespace OnnxLM.Constraints;

/// <summary>
/// A regular expression compiled to a Thompson NFA over characters, walked as a DFA built lazily (each DFA state a
/// set of NFA states, its transitions cached), so a state repeats and the allowed tokens can be cached per state.
/// </summary>
internal sealed class RegexConstraint : OutputConstraint
{
    private readonly List<(Func<char, bool>? Test, int Next, int Epsilon2)> _nfa = []; // Test null: epsilon to Next (and Epsilon2 when ≥ 0)
    private readonly int _startNfa;
    private readonly int _acceptNfa;
    private readonly List<int[]> _dfaStates = [];
    private readonly Dictionary<string, int> _dfaIds = new(StringComparer.Ordinal);
    private readonly Dictionary<(int, char), int> _transitions = [];
    private readonly Lock _lock = new();
    private readonly string _pattern;
    private int _pos;

    public RegexConstraint(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        _pattern = pattern;
        var (start, end) = ParseAlternation();
        if (_pos != pattern.Length) throw Error($"unexpected '{pattern[_pos]}'");
        _startNfa = start;
        _acceptNfa = end;
        Start = Intern(Closure([start]));
    }

    internal override object Start { get; }

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

    internal override object? Step(object state, char c)
    {
        var id = (int)state;
        lock (_lock)
        {
            if (_transitions.TryGetValue((id, c), out var next)) return next < 0 ? null : next;
            var targets = new List<int>();
            foreach (var s in _dfaStates[id])
            {
                var (test, to, _) = _nfa[s];
                if (test is not null && test(c)) targets.Add(to);
            }

            next = targets.Count == 0 ? -1 : Intern(Closure(targets));
            _transitions[(id, c)] = next;
            return next < 0 ? null : next;
        }
    }

    internal override bool IsComplete(object state)
    {
        lock (_lock) return Array.IndexOf(_dfaStates[(int)state], _acceptNfa) >= 0;
    }

    internal override bool IsFinal(object state)
    {
        lock (_lock)
        {
            // Final when complete and no NFA state has a character transition left.
            var states = _dfaStates[(int)state];
            return Array.IndexOf(states, _acceptNfa) >= 0 && states.All(s => _nfa[s].Test is null);
        }
    }

    internal override int? CacheKey(object state) => (int)state;

    private int Intern(int[] states)
    {
        var key = string.Join(',', states);
        if (_dfaIds.TryGetValue(key, out var id)) return id;
        if (_dfaStates.Count > 100_000) throw new InvalidOperationException($"The regular expression '{_pattern}' needs more than 100,000 automaton states.");
        id = _dfaStates.Count;
        _dfaStates.Add(states);
        _dfaIds[key] = id;
        return id;
    }

    private int[] Closure(IEnumerable<int> seeds)
    {
        var seen = new HashSet<int>();
        var stack = new Stack<int>(seeds);
        while (stack.Count > 0)
        {
            var s = stack.Pop();
            if (!seen.Add(s)) continue;
            var (test, next, e2) = _nfa[s];
            if (test is null)
            {
                if (next >= 0) stack.Push(next);
                if (e2 >= 0) stack.Push(e2);
            }
        }

        var result = seen.ToArray();
        Array.Sort(result);
        return result;
    }

    private int NewState(Func<char, bool>? test = null, int next = -1, int e2 = -1)
    {
        _nfa.Add((test, next, e2));
        return _nfa.Count - 1;
    }

    private void Patch(int state, int next)
    {
        var (test, n, e2) = _nfa[state];
        _nfa[state] = n < 0 ? (test, next, e2) : (test, n, next);
    }

    private ArgumentException Error(string what) => new($"Regular expression '{_pattern}' at {_pos}: {what}.", "pattern");

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
        var (s, e) = ParseAtom();
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
                    (s, e) = Repeat(atomStart, min, max);
                    break;
                }
            }
        }

        return (s, e);
    }

    /// <summary>{m,n}: the atom starting at <paramref name="atomStart"/> re-parsed m (then n − m optional) times.</summary>
    private (int Start, int End) Repeat(int atomStart, int min, int? max)
    {
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
        var c = _pattern[_pos++];
        switch (c)
        {
            case '(':
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
                return Single(ParseClass());
            case '.':
                return Single(ch => ch != '\n');
            case '\\':
                return Single(ParseEscape(inClass: false));
            case '^' or '$':
                throw Error("anchors are implicit (the whole output matches); remove '^'/'$'");
            case '*' or '+' or '?' or '{':
                throw Error($"nothing to repeat before '{c}'");
            default:
                return Single(ch => ch == c);
        }
    }

    private (int, int) Single(Func<char, bool> test)
    {
        var end = NewState();
        var start = NewState(test, end);
        return (start, end);
    }

    private Func<char, bool> ParseEscape(bool inClass)
    {
        if (_pos >= _pattern.Length) throw Error("trailing '\\'");
        var e = _pattern[_pos++];
        return e switch
        {
            'd' => char.IsAsciiDigit,
            'D' => ch => !char.IsAsciiDigit(ch),
            'w' => ch => char.IsAsciiLetterOrDigit(ch) || ch == '_',
            'W' => ch => !(char.IsAsciiLetterOrDigit(ch) || ch == '_'),
            's' => ch => ch is ' ' or '\t' or '\n' or '\r' or '\f' or '\v',
            'S' => ch => ch is not (' ' or '\t' or '\n' or '\r' or '\f' or '\v'),
            'n' => ch => ch == '\n',
            't' => ch => ch == '\t',
            'r' => ch => ch == '\r',
            'x' => Is(Hex()),
            _ when char.IsAsciiLetterOrDigit(e) => throw Error($"unsupported escape '\\{e}'"),
            _ => ch => ch == e,
        };
    }

    private static Func<char, bool> Is(char expected) => ch => ch == expected;

    /// <summary>The two hex digits after <c>\x</c>.</summary>
    private char Hex()
    {
        if (_pos + 2 > _pattern.Length || !int.TryParse(_pattern.AsSpan(_pos, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var value)) throw Error("\\x needs two hex digits");
        _pos += 2;
        return (char)value;
    }

    private Func<char, bool> ParseClass()
    {
        var negate = _pos < _pattern.Length && _pattern[_pos] == '^';
        if (negate) _pos++;
        var parts = new List<Func<char, bool>>();
        var first = true;
        while (true)
        {
            if (_pos >= _pattern.Length) throw Error("missing ']'");
            var c = _pattern[_pos];
            if (c == ']' && !first)
            {
                _pos++;
                break;
            }

            first = false;
            _pos++;
            if (c == '\\')
            {
                var e = _pattern[_pos];
                if (e is 'd' or 'D' or 'w' or 'W' or 's' or 'S')
                {
                    parts.Add(ParseEscape(inClass: true));
                    continue;
                }

                _pos++;
                c = e switch { 'n' => '\n', 't' => '\t', 'r' => '\r', 'x' => Hex(), _ => e };
            }

            if (_pos + 1 < _pattern.Length && _pattern[_pos] == '-' && _pattern[_pos + 1] != ']')
            {
                _pos++;
                var hi = _pattern[_pos++];
                if (hi == '\\')
                {
                    hi = _pattern[_pos++];
                    if (hi == 'x') hi = Hex();
                }
                if (hi < c) throw Error("a range runs backwards");
                var (lo, h) = (c, hi);
                parts.Add(ch => ch >= lo && ch <= h);
            }
            else
            {
                var single = c;
                parts.Add(ch => ch == single);
            }
        }

        var tests = parts.ToArray();
        return negate ? ch => !tests.Any(t => t(ch)) : ch => tests.Any(t => t(ch));
    }
}
