namespace OnnxLM.Chat.Jinja;

/// <summary>Arithmetic and comparison as Jinja (Python) defines them, with integers that fail on overflow instead of wrapping.</summary>
internal static class Operators
{
    public static object? Arithmetic(Interpreter interpreter, string op, object? left, object? right)
    {
        if (op == "+")
        {
            switch (left, right)
            {
                case (List<object?> a, List<object?> b):
                    interpreter.CheckLength((long)a.Count + b.Count);
                    return (List<object?>)[.. a, .. b];
                case (string, _) or (_, string) when left is not (null or Undefined) && right is not (null or Undefined):
                    // Jinja (Python) only adds two strings; transformers.js also joins a string with a number, and so do we.
                    var text = Values.ToText(left) + Values.ToText(right);
                    interpreter.CheckLength(text.Length);
                    return text;
            }
        }

        if (op == "*")
        {
            switch (left, right)
            {
                case (string s, long n):
                    return Repeat(interpreter, s, n);
                case (long n, string s):
                    return Repeat(interpreter, s, n);
                case (List<object?> list, long n):
                    interpreter.CheckLength(n > int.MaxValue ? long.MaxValue : list.Count * Math.Max(0, n));
                    return Enumerable.Range(0, (int)Math.Max(0, n)).SelectMany(_ => list).ToList();
            }
        }

        if (!Values.IsNumber(left) || !Values.IsNumber(right))
        {
            throw new InvalidOperationException($"unsupported operand types for {op}: {Values.TypeName(left)} and {Values.TypeName(right)}");
        }

        var integers = left is long or bool && right is long or bool;
        if (integers)
        {
            var a = left is bool x ? (x ? 1L : 0L) : (long)left!;
            var b = right is bool y ? (y ? 1L : 0L) : (long)right!;
            switch (op)
            {
                case "+": return checked(a + b);
                case "-": return checked(a - b);
                case "*": return checked(a * b);
                case "/": return b == 0 ? throw new InvalidOperationException("division by zero") : (double)a / b;
                case "//": return b == 0 ? throw new InvalidOperationException("integer division by zero") : FloorDiv(a, b);
                case "%": return b == 0 ? throw new InvalidOperationException("integer modulo by zero") : a - (b * FloorDiv(a, b));
                case "**":
                    if (b < 0) return Math.Pow(a, b);
                    var result = 1L;
                    for (var (bas, e) = (a, b); e > 0; e >>= 1)
                    {
                        if ((e & 1) != 0) result = checked(result * bas);
                        if (e > 1) bas = checked(bas * bas);
                    }

                    return result;
            }
        }

        var da = Values.ToDouble(left);
        var db = Values.ToDouble(right);
        return op switch
        {
            "+" => da + db,
            "-" => da - db,
            "*" => da * db,
            "/" => db == 0 ? throw new InvalidOperationException("float division by zero") : da / db,
            "//" => db == 0 ? throw new InvalidOperationException("float floor division by zero") : Math.Floor(da / db),
            "%" => db == 0 ? throw new InvalidOperationException("float modulo") : da - (db * Math.Floor(da / db)),
            "**" => Math.Pow(da, db),
            _ => throw new InvalidOperationException($"unknown operator {op}"),
        };
    }

    private static long FloorDiv(long a, long b)
    {
        var q = a / b;
        return (a % b != 0) && ((a < 0) != (b < 0)) ? q - 1 : q;
    }

    private static string Repeat(Interpreter interpreter, string s, long n)
    {
        if (n <= 0 || s.Length == 0) return "";
        interpreter.CheckLength(n > int.MaxValue ? long.MaxValue : s.Length * n);
        return string.Concat(Enumerable.Repeat(s, (int)n));
    }

    public static bool Compare(string op, object? left, object? right) => op switch
    {
        "==" => Values.Equals(left, right),
        "!=" => !Values.Equals(left, right),
        "<" => Values.Compare(left, right) < 0,
        ">" => Values.Compare(left, right) > 0,
        "<=" => Values.Compare(left, right) <= 0,
        ">=" => Values.Compare(left, right) >= 0,
        "in" => Contains(right, left),
        "not in" => !Contains(right, left),
        _ => throw new InvalidOperationException($"unknown comparison {op}"),
    };

    public static bool Contains(object? container, object? item) => container switch
    {
        string s when item is string sub => s.Contains(sub, StringComparison.Ordinal),
        string => throw new InvalidOperationException($"'in <string>' requires a string on the left, not a {Values.TypeName(item)}"),
        List<object?> list => list.Exists(x => Values.Equals(x, item)),
        OrderedDictionary<string, object?> dict => item is string key && dict.ContainsKey(key),
        Namespace ns => item is string key && ns.Values.ContainsKey(key),
        Undefined or null => false,
        _ => throw new InvalidOperationException($"a {Values.TypeName(container)} is not a container for 'in'"),
    };
}
