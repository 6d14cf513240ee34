using System.Globalization;
using System.Text;
using System.Text.Json;

namespace OnnxLM.Chat.Jinja;

/// <summary>Jinja's undefined: what a missing variable, key or attribute evaluates to. Renders as nothing, is false, iterates as empty.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Instance = new();

    private Undefined() { }

    public override string ToString() => "";
}

/// <summary>The mutable object <c>namespace(...)</c> makes, the one way a template carries state out of a loop.</summary>
internal sealed class Namespace(OrderedDictionary<string, object?> values)
{
    public OrderedDictionary<string, object?> Values { get; } = values;
}

/// <summary>Arguments of a call as evaluated: positional, then keyword in source order.</summary>
internal sealed record CallArguments(List<object?> Positional, List<(string Name, object? Value)> Named)
{
    public static CallArguments Empty => new([], []);

    /// <summary>The argument at <paramref name="index"/> or named <paramref name="name"/>, else <paramref name="fallback"/>.</summary>
    public object? Get(int index, string name, object? fallback = null)
    {
        if (index < Positional.Count) return Positional[index];
        foreach (var (n, v) in Named)
        {
            if (n == name) return v;
        }

        return fallback;
    }

    public object? GetNamed(string name, object? fallback = null) => Get(int.MaxValue, name, fallback);

    public bool Has(int index, string name) => index < Positional.Count || Named.Exists(p => p.Name == name);
}

/// <summary>A callable value: a macro, a global function (<c>range</c>, <c>raise_exception</c>…) or a bound method (<c>text.split</c>).</summary>
internal sealed class Function(string name, Func<CallArguments, object?> invoke)
{
    public string Name { get; } = name;

    public object? Invoke(CallArguments args) => invoke(args);
}

/// <summary>
/// The value model of the interpreter and the rules values follow. Values are <see langword="null"/> (none),
/// <see cref="Undefined"/>, <see cref="bool"/>, <see cref="long"/>, <see cref="double"/>, <see cref="string"/>,
/// <c>List&lt;object?&gt;</c> (lists and tuples), <c>OrderedDictionary&lt;string, object?&gt;</c>, <see cref="Namespace"/>
/// and <see cref="Function"/>. Rendering follows @huggingface/jinja, the engine transformers.js renders chat templates
/// with: none and undefined render as nothing, booleans as <c>true</c>/<c>false</c>, lists and dicts as JSON.
/// </summary>
internal static class Values
{
    public static bool IsTruthy(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> list => list.Count > 0,
        OrderedDictionary<string, object?> dict => dict.Count > 0,
        _ => true,
    };

    public static string TypeName(object? value) => value switch
    {
        null => "none",
        Undefined => "undefined",
        bool => "boolean",
        long => "integer",
        double => "float",
        string => "string",
        List<object?> => "list",
        OrderedDictionary<string, object?> => "dict",
        Namespace => "namespace",
        Function => "function",
        _ => value.GetType().Name,
    };

    /// <summary>How a value renders in output and with <c>~</c> and <c>|string</c>.</summary>
    public static string ToText(object? value) => value switch
    {
        null or Undefined => "",
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatFloat(d),
        List<object?> or OrderedDictionary<string, object?> or Namespace => Json.Serialize(value, new JsonFormat(null, ", ", ": ", false, false)),
        Function f => $"<function {f.Name}>",
        _ => value.ToString() ?? "",
    };

    /// <summary>Python's repr of a float: the shortest round-trip digits, always with a decimal point or exponent.</summary>
    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        var text = d.ToString("R", CultureInfo.InvariantCulture);
        var e = text.IndexOf('E');
        var abs = Math.Abs(d);
        if (abs >= 1e16 || abs < 1e-4)
        {
            if (e < 0) return text;
            var exponent = int.Parse(text.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            return $"{text[..e]}e{(exponent < 0 ? '-' : '+')}{Math.Abs(exponent):00}";
        }

        if (e >= 0) text = ((decimal)d).ToString(CultureInfo.InvariantCulture);
        return text.Contains('.') ? text : text + ".0";
    }

    /// <summary>
    /// The deepest a value may nest for the operations that walk it recursively (==, in, sort, tojson, rendering). Literals
    /// are bounded by <see cref="TemplateOptions.MaxDepth"/>, but a loop can wrap a list in a list a million times.
    /// </summary>
    public const int MaxNesting = 128;

    /// <summary>Fails, instead of overflowing the stack, when a recursive walk of a value goes past <see cref="MaxNesting"/>.</summary>
    public static void CheckNesting(int depth)
    {
        if (depth > MaxNesting) throw new Interpreter.LimitReachedException($"A value nests deeper than {MaxNesting} levels, the fixed bound of comparing and writing values.");
    }

    public static new bool Equals(object? a, object? b) => Equals(a, b, 0);

    private static bool Equals(object? a, object? b, int depth)
    {
        CheckNesting(depth);
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a) == ToDouble(b);
        return (a, b) switch
        {
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equals(p.First, p.Second, depth + 1)),
            (OrderedDictionary<string, object?> x, OrderedDictionary<string, object?> y) =>
                x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out var v) && Equals(p.Value, v, depth + 1)),
            _ => ReferenceEquals(a, b),
        };
    }

    public static bool IsNumber(object? value) => value is long or double or bool;

    public static double ToDouble(object? value) => value switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new InvalidOperationException($"a {TypeName(value)} is not a number"),
    };

    /// <summary>Ordering for sort, min, max and &lt; &gt;: numbers with numbers, strings with strings (optionally ignoring case).</summary>
    public static int Compare(object? a, object? b, bool caseSensitive = true) => Compare(a, b, caseSensitive, 0);

    private static int Compare(object? a, object? b, bool caseSensitive, int depth)
    {
        CheckNesting(depth);
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a).CompareTo(ToDouble(b));
        if (a is string x && b is string y)
        {
            return caseSensitive ? string.CompareOrdinal(x, y) : string.CompareOrdinal(x.ToLowerInvariant(), y.ToLowerInvariant());
        }

        if (a is List<object?> la && b is List<object?> lb)
        {
            for (var i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                var c = Compare(la[i], lb[i], caseSensitive, depth + 1);
                if (c != 0) return c;
            }

            return la.Count.CompareTo(lb.Count);
        }

        if (a is null && b is null) return 0;
        throw new InvalidOperationException($"a {TypeName(a)} and a {TypeName(b)} cannot be compared");
    }

    /// <summary>The items a for loop or a filter goes through: a list's items, a dict's keys, a string's characters.</summary>
    public static List<object?> Iterate(object? value) => value switch
    {
        List<object?> list => list,
        OrderedDictionary<string, object?> dict => [.. dict.Keys],
        Namespace ns => [.. ns.Values.Keys],
        string s => Characters(s),
        Undefined => [],
        _ => throw new InvalidOperationException($"a {TypeName(value)} is not iterable"),
    };

    /// <summary>A string's characters as Python counts them: code points, not UTF-16 units.</summary>
    public static List<object?> Characters(string s)
    {
        var result = new List<object?>(s.Length);
        foreach (var rune in s.EnumerateRunes()) result.Add(rune.ToString());
        return result;
    }

    public static int Length(object? value) => value switch
    {
        string s => CodePointCount(s),
        List<object?> list => list.Count,
        OrderedDictionary<string, object?> dict => dict.Count,
        Namespace ns => ns.Values.Count,
        Undefined => 0,
        _ => throw new InvalidOperationException($"a {TypeName(value)} has no length"),
    };

    public static int CodePointCount(string s)
    {
        var count = s.Length;
        for (var i = 0; i + 1 < s.Length; i++)
        {
            if (char.IsSurrogatePair(s[i], s[i + 1])) { count--; i++; }
        }

        return count;
    }

    /// <summary>Converts what a caller passes in (JSON, dictionaries, lists, primitives) to template values; nothing else is accepted, so no .NET object is reflected over.</summary>
    public static object? FromDotNet(object? value, int depth = 0)
    {
        if (depth > 64) throw new ArgumentException("Template variables nest deeper than 64 levels.");
        return value switch
        {
            null => null,
            string or bool or long or double => value,
            int i => (long)i,
            short s => (long)s,
            byte b => (long)b,
            uint u => (long)u,
            float f => (double)f,
            decimal m => (double)m,
            JsonElement e => FromJson(e, depth),
            System.Text.Json.Nodes.JsonNode n => FromJson(JsonSerializer.SerializeToElement(n), depth),
            Namespace or Function or Undefined => value,
            OrderedDictionary<string, object?> d => Convert(d, depth),
            IEnumerable<KeyValuePair<string, object?>> d => Convert(d, depth),
            IEnumerable<KeyValuePair<string, string>> d => Convert(d.Select(p => KeyValuePair.Create(p.Key, (object?)p.Value)), depth),
            System.Collections.IEnumerable list => list.Cast<object?>().Select(x => FromDotNet(x, depth + 1)).ToList(),
            _ => throw new ArgumentException($"A template variable of type {value.GetType().Name} is not supported: pass strings, numbers, booleans, lists, string-keyed dictionaries or JSON."),
        };
    }

    private static OrderedDictionary<string, object?> Convert(IEnumerable<KeyValuePair<string, object?>> pairs, int depth)
    {
        var dict = new OrderedDictionary<string, object?>();
        foreach (var (k, v) in pairs) dict[k] = FromDotNet(v, depth + 1);
        return dict;
    }

    public static object? FromJson(JsonElement e, int depth = 0)
    {
        if (depth > 64) throw new ArgumentException("Template variables nest deeper than 64 levels.");
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                var dict = new OrderedDictionary<string, object?>();
                foreach (var p in e.EnumerateObject()) dict[p.Name] = FromJson(p.Value, depth + 1);
                return dict;
            case JsonValueKind.Array:
                return e.EnumerateArray().Select(x => FromJson(x, depth + 1)).ToList();
            case JsonValueKind.String:
                return e.GetString();
            case JsonValueKind.Number:
                // JSON's 1 stays an integer and 1.0 a float, as Python's json module reads them.
                return e.TryGetInt64(out var l) && e.GetRawText().AsSpan().IndexOfAny(".eE") < 0 ? (object)l : e.GetDouble();
            case JsonValueKind.True:
                return true;
            case JsonValueKind.False:
                return false;
            default:
                return null;
        }
    }
}

/// <summary>The options of <c>tojson</c>: Python's <c>json.dumps</c> arguments.</summary>
internal readonly record struct JsonFormat(int? Indent, string ItemSeparator, string KeySeparator, bool EnsureAscii, bool SortKeys);

/// <summary>JSON as Python's <c>json.dumps</c> writes it (transformers' <c>tojson</c> is <c>json.dumps(x, ensure_ascii=False)</c>).</summary>
internal static class Json
{
    public static string Serialize(object? value, JsonFormat format)
    {
        var sb = new StringBuilder();
        Write(sb, value, format, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? value, JsonFormat format, int depth)
    {
        Values.CheckNesting(depth);
        switch (value)
        {
            case null or Undefined:
                sb.Append("null");
                break;
            case bool b:
                sb.Append(b ? "true" : "false");
                break;
            case long l:
                sb.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : Values.FormatFloat(d));
                break;
            case string s:
                WriteString(sb, s, format.EnsureAscii);
                break;
            case List<object?> list:
                if (list.Count == 0)
                {
                    sb.Append("[]");
                    break;
                }

                sb.Append('[');
                for (var i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(format.ItemSeparator);
                    NewLine(sb, format, depth + 1);
                    Write(sb, list[i], format, depth + 1);
                }

                NewLine(sb, format, depth);
                sb.Append(']');
                break;
            case OrderedDictionary<string, object?> or Namespace:
                var pairs = (value is Namespace ns ? ns.Values : (OrderedDictionary<string, object?>)value).ToList();
                if (format.SortKeys) pairs.Sort((x, y) => string.CompareOrdinal(x.Key, y.Key));
                if (pairs.Count == 0)
                {
                    sb.Append("{}");
                    break;
                }

                sb.Append('{');
                for (var i = 0; i < pairs.Count; i++)
                {
                    if (i > 0) sb.Append(format.ItemSeparator);
                    NewLine(sb, format, depth + 1);
                    WriteString(sb, pairs[i].Key, format.EnsureAscii);
                    sb.Append(format.KeySeparator);
                    Write(sb, pairs[i].Value, format, depth + 1);
                }

                NewLine(sb, format, depth);
                sb.Append('}');
                break;
            default:
                throw new InvalidOperationException($"a {Values.TypeName(value)} cannot be written as JSON");
        }
    }

    private static void NewLine(StringBuilder sb, JsonFormat format, int depth)
    {
        if (format.Indent is { } indent)
        {
            sb.Append('\n').Append(' ', indent * depth);
        }
    }

    private static void WriteString(StringBuilder sb, string s, bool ensureAscii)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ensureAscii && c > 0x7e))
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
    }
}
