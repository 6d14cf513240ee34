namespace OnnxLM.Constraints;

/// <summary>
/// JSON (RFC 8259) recognised byte by byte by a pushdown automaton whose states are immutable records, so each
/// token can be tried from the current state without disturbing it, and equal states (same mode, same open
/// containers) share their cached allowed tokens. Strings must be valid UTF-8 (no overlong forms or surrogates).
/// </summary>
internal sealed class JsonConstraint(bool objectOnly, int maxDepth) : OutputConstraint
{
    public const int MaxSupportedDepth = 1000;
    private const int MaxWhitespaceRun = 4;

    private enum Mode
    {
        Value,          // a value may start (after whitespace)
        ObjectStart,    // after '{': '"' or '}'
        Key,            // inside a key string
        KeyEscape,
        KeyUnicode,
        Colon,          // after a key: ':'
        AfterValue,     // inside a container after a value: ',' or the closer
        KeyAfterComma,  // after ',' in an object: '"'
        ArrayStart,     // after '[': a value or ']'
        String,         // inside a value string
        StringEscape,
        StringUnicode,
        Number,
        Literal,        // the rest of true / false / null
        Done,
    }

    private enum NumberPhase { Minus, Zero, Int, Dot, Frac, E, ESign, Exp }

    /// <summary>
    /// One state: the mode, the open containers ('{' or '[') innermost first, and the mode's own detail; in a string,
    /// <paramref name="Utf8"/> holds the continuation bytes a character still needs (count, then the next byte's lowest and highest value).
    /// </summary>
    private sealed record State(Mode Mode, Frame? Stack, int Depth, int Whitespace, NumberPhase Number = NumberPhase.Int, string? Rest = null, int Hex = 0, int Utf8 = 0);

    private sealed record Frame(char Kind, Frame? Outer);

    internal override object Start { get; } = new State(Mode.Value, null, 0, 0);

    internal override bool IsComplete(object state)
    {
        var s = (State)state;
        return s.Mode == Mode.Done || (s.Stack is null && s.Mode == Mode.Number && !objectOnly && s.Number is NumberPhase.Zero or NumberPhase.Int or NumberPhase.Frac or NumberPhase.Exp);
    }

    internal override bool IsFinal(object state) => ((State)state).Mode == Mode.Done;

    private static bool IsWhitespace(char c) => c is ' ' or '\t' or '\n' or '\r';

    internal override object? Step(object state, byte b) => Next((State)state, (char)b);

    /// <summary>The state after one byte (as a char: ASCII, or 0x80–0xFF for the bytes of other characters).</summary>
    private State? Next(State s, char c)
    {
        switch (s.Mode)
        {
            case Mode.Value or Mode.ArrayStart or Mode.ObjectStart or Mode.Colon or Mode.AfterValue or Mode.KeyAfterComma when IsWhitespace(c):
                return s.Whitespace >= MaxWhitespaceRun ? null : s with { Whitespace = s.Whitespace + 1 };
            case Mode.Value:
                return StartValue(s with { Whitespace = 0 }, c);
            case Mode.ArrayStart:
                return c == ']' ? Close(s with { Whitespace = 0 }) : StartValue(s with { Whitespace = 0 }, c);
            case Mode.ObjectStart:
                return c == '"' ? s with { Mode = Mode.Key, Whitespace = 0 } : c == '}' ? Close(s with { Whitespace = 0 }) : null;
            case Mode.KeyAfterComma:
                return c == '"' ? s with { Mode = Mode.Key, Whitespace = 0 } : null;
            case Mode.Key or Mode.String:
                if (s.Utf8 != 0 || c >= 0x80) return Utf8Next(s, c);
                if (c == '"') return s.Mode == Mode.Key ? s with { Mode = Mode.Colon } : AfterValue(s);
                if (c == '\\') return s with { Mode = s.Mode == Mode.Key ? Mode.KeyEscape : Mode.StringEscape };
                return c < 0x20 ? null : s;
            case Mode.KeyEscape or Mode.StringEscape:
                var inKey = s.Mode == Mode.KeyEscape;
                if (c == 'u') return s with { Mode = inKey ? Mode.KeyUnicode : Mode.StringUnicode, Hex = 0 };
                return c is '"' or '\\' or '/' or 'b' or 'f' or 'n' or 'r' or 't' ? s with { Mode = inKey ? Mode.Key : Mode.String } : null;
            case Mode.KeyUnicode or Mode.StringUnicode:
                if (!char.IsAsciiHexDigit(c)) return null;
                return s.Hex == 3 ? s with { Mode = s.Mode == Mode.KeyUnicode ? Mode.Key : Mode.String, Hex = 0 } : s with { Hex = s.Hex + 1 };
            case Mode.Colon:
                return c == ':' ? s with { Mode = Mode.Value, Whitespace = 0 } : null;
            case Mode.AfterValue:
                if (c == ',') return s with { Mode = s.Stack!.Kind == '{' ? Mode.KeyAfterComma : Mode.Value, Whitespace = 0 };
                return c == (s.Stack!.Kind == '{' ? '}' : ']') ? Close(s with { Whitespace = 0 }) : null;
            case Mode.Literal:
                if (c != s.Rest![0]) return null;
                return s.Rest.Length == 1 ? AfterValue(s with { Rest = null }) : s with { Rest = s.Rest[1..] };
            case Mode.Number:
                return NumberNext(s, c);
            default:
                return null; // Done: nothing may follow
        }
    }

    /// <summary>A byte of a non-ASCII character inside a string: a valid lead byte, or the continuation the character needs.</summary>
    private static State? Utf8Next(State s, char c)
    {
        if (s.Utf8 != 0)
        {
            var (need, lo, hi) = (s.Utf8 >> 16, (s.Utf8 >> 8) & 0xFF, s.Utf8 & 0xFF);
            if (c < lo || c > hi) return null;
            return s with { Utf8 = need == 1 ? 0 : Utf8State(need - 1, 0x80, 0xBF) };
        }

        // RFC 3629's table: the second byte's range depends on the lead byte (no overlong forms, no surrogates, nothing above U+10FFFF).
        return c switch
        {
            >= (char)0xC2 and <= (char)0xDF => s with { Utf8 = Utf8State(1, 0x80, 0xBF) },
            (char)0xE0 => s with { Utf8 = Utf8State(2, 0xA0, 0xBF) },
            (char)0xED => s with { Utf8 = Utf8State(2, 0x80, 0x9F) },
            >= (char)0xE1 and <= (char)0xEF => s with { Utf8 = Utf8State(2, 0x80, 0xBF) },
            (char)0xF0 => s with { Utf8 = Utf8State(3, 0x90, 0xBF) },
            >= (char)0xF1 and <= (char)0xF3 => s with { Utf8 = Utf8State(3, 0x80, 0xBF) },
            (char)0xF4 => s with { Utf8 = Utf8State(3, 0x80, 0x8F) },
            _ => null,
        };
    }

    private static int Utf8State(int need, int lo, int hi) => (need << 16) | (lo << 8) | hi;

    private State? StartValue(State s, char c)
    {
        var topLevel = s.Stack is null;
        if (topLevel && objectOnly && c != '{') return null;
        switch (c)
        {
            case '{':
            case '[':
                if (s.Depth >= maxDepth) return null;
                return s with { Mode = c == '{' ? Mode.ObjectStart : Mode.ArrayStart, Stack = new Frame(c, s.Stack), Depth = s.Depth + 1 };
            case '"':
                return s with { Mode = Mode.String };
            case 't': return s with { Mode = Mode.Literal, Rest = "rue" };
            case 'f': return s with { Mode = Mode.Literal, Rest = "alse" };
            case 'n': return s with { Mode = Mode.Literal, Rest = "ull" };
            case '-': return s with { Mode = Mode.Number, Number = NumberPhase.Minus };
            case '0': return s with { Mode = Mode.Number, Number = NumberPhase.Zero };
            default:
                return c is >= '1' and <= '9' ? s with { Mode = Mode.Number, Number = NumberPhase.Int } : null;
        }
    }

    private State? NumberNext(State s, char c)
    {
        var digit = char.IsAsciiDigit(c);
        NumberPhase? next = (s.Number, c) switch
        {
            (NumberPhase.Minus, '0') => NumberPhase.Zero,
            (NumberPhase.Minus, _) when digit => NumberPhase.Int,
            (NumberPhase.Int, _) when digit => NumberPhase.Int,
            (NumberPhase.Zero or NumberPhase.Int, '.') => NumberPhase.Dot,
            (NumberPhase.Dot or NumberPhase.Frac, _) when digit => NumberPhase.Frac,
            (NumberPhase.Zero or NumberPhase.Int or NumberPhase.Frac, 'e' or 'E') => NumberPhase.E,
            (NumberPhase.E, '+' or '-') => NumberPhase.ESign,
            (NumberPhase.E or NumberPhase.ESign or NumberPhase.Exp, _) when digit => NumberPhase.Exp,
            _ => null,
        };
        if (next is { } phase) return s with { Number = phase };
        // The number ended if it was complete; the character then belongs to what follows it.
        if (s.Number is not (NumberPhase.Zero or NumberPhase.Int or NumberPhase.Frac or NumberPhase.Exp)) return null;
        var after = AfterValue(s);
        return after is null ? null : Next(after, c);
    }

    /// <summary>A value just ended: in a container, a ',' or the closer may come; at the top level the document is done.</summary>
    private static State? AfterValue(State s) => s.Stack is null ? s with { Mode = Mode.Done, Whitespace = 0 } : s with { Mode = Mode.AfterValue, Whitespace = 0 };

    private static State? Close(State s)
    {
        var outer = s.Stack!.Outer;
        return AfterValue(s with { Stack = outer, Depth = s.Depth - 1 });
    }
}
