using System.Globalization;
using System.Text.RegularExpressions;

namespace OnnxLM.Chat.Jinja;

/// <summary>Jinja's built-in filters, with Jinja's argument names and defaults (so <c>join(attribute='x')</c> and <c>tojson(indent=2)</c> work).</summary>
internal static partial class Filters
{
    public static object? Apply(Interpreter interpreter, string name, object? value, CallArguments args, Node at)
    {
        switch (name)
        {
            case "safe":
                return value;
            case "string":
                return Values.ToText(value);
            case "default" or "d":
                var fallback = args.Get(0, "default_value", "");
                var boolean = Values.IsTruthy(args.Get(1, "boolean", false));
                return value is Undefined || (boolean && !Values.IsTruthy(value)) ? fallback : value;
            case "length" or "count":
                return (long)Values.Length(value);
            case "first":
                return Values.Iterate(value) is { Count: > 0 } first ? first[0] : Undefined.Instance;
            case "last":
                return Values.Iterate(value) is { Count: > 0 } last ? last[^1] : Undefined.Instance;
            case "list":
                return Values.Iterate(value).ToList();
            case "reverse":
                var reversed = Values.Iterate(value).ToList();
                reversed.Reverse();
                return value is string ? string.Concat(reversed.Cast<string>()) : reversed;
            case "join":
                var separator = Values.ToText(args.Get(0, "d", ""));
                var attribute = args.Get(1, "attribute");
                var parts = Values.Iterate(value).Select(x => Values.ToText(attribute is null ? x : Attribute(interpreter, x, attribute)));
                var joined = string.Join(separator, parts);
                interpreter.CheckLength(joined.Length);
                return joined;
            case "upper":
                return Text(value, name).ToUpperInvariant();
            case "lower":
                return Text(value, name).ToLowerInvariant();
            case "title":
                return Members.Title(Text(value, name));
            case "capitalize":
                return Members.Capitalize(Text(value, name));
            case "trim":
                return Members.Strip(Text(value, name), args.Get(0, "chars"), true, true);
            case "replace":
                return Members.Replace(interpreter, Text(value, name), args.Get(0, "old"), args.Get(1, "new"), args.Get(2, "count"));
            case "indent":
                return Indent(Text(value, name), args.Get(0, "width", 4L), Values.IsTruthy(args.Get(1, "first", false)), Values.IsTruthy(args.Get(2, "blank", false)));
            case "center":
                var text = Text(value, name);
                var width = args.Get(0, "width", 80L) is long w ? (int)Math.Min(w, interpreter.Options.MaxOutputLength) : 80;
                if (text.Length >= width) return text;
                var left = (width - text.Length) / 2 + ((width - text.Length) & width & 1);
                return new string(' ', left) + text + new string(' ', width - text.Length - left);
            case "wordcount":
                return (long)WordPattern().Count(Text(value, name));
            case "escape" or "e":
                // markupsafe's escape, which Jinja's |e is.
                return Values.ToText(value).Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
                    .Replace(">", "&gt;", StringComparison.Ordinal).Replace("\"", "&#34;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal);
            case "tojson":
                var indent = args.Get(0, "indent") switch
                {
                    null or Undefined => (int?)null,
                    long i => (int)Math.Clamp(i, 0, 64),
                    var other => throw new InvalidOperationException($"tojson's indent must be an integer, not a {Values.TypeName(other)}"),
                };
                var (itemSeparator, keySeparator) = args.Get(2, "separators") is List<object?> { Count: 2 } seps
                    ? (Values.ToText(seps[0]), Values.ToText(seps[1]))
                    : (indent is null ? ", " : ",", ": ");
                var json = Json.Serialize(value, new JsonFormat(indent, itemSeparator, keySeparator,
                    Values.IsTruthy(args.Get(1, "ensure_ascii", false)), Values.IsTruthy(args.Get(3, "sort_keys", false))));
                interpreter.CheckLength(json.Length);
                return json;
            case "items":
                return value switch
                {
                    OrderedDictionary<string, object?> dict => dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
                    Namespace ns => ns.Values.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
                    Undefined => new List<object?>(),
                    _ => throw new InvalidOperationException($"items needs a dict, not a {Values.TypeName(value)}"),
                };
            case "dictsort":
                return DictSort(value, args);
            case "int":
                return ToInt(value, args.Get(0, "default", 0L));
            case "float":
                return ToFloat(value, args.Get(0, "default", 0.0));
            case "abs":
                return value switch
                {
                    long l => (object)checked(Math.Abs(l)),
                    double d => Math.Abs(d),
                    bool b => b ? 1L : 0L,
                    _ => throw new InvalidOperationException($"abs needs a number, not a {Values.TypeName(value)}"),
                };
            case "round":
                return Round(value, args);
            case "sum":
                var sumAttribute = args.Get(0, "attribute");
                object? total = args.Get(1, "start", 0L);
                foreach (var item in Values.Iterate(value))
                {
                    total = Operators.Arithmetic(interpreter, "+", total, sumAttribute is null ? item : Attribute(interpreter, item, sumAttribute));
                }

                return total;
            case "min" or "max":
                var candidates = Values.Iterate(value);
                if (candidates.Count == 0) return Undefined.Instance;
                var caseSensitive = Values.IsTruthy(args.Get(0, "case_sensitive", false));
                var byAttribute = args.Get(1, "attribute");
                var best = candidates[0];
                foreach (var item in candidates.Skip(1))
                {
                    var c = Values.Compare(Key(interpreter, item, byAttribute), Key(interpreter, best, byAttribute), caseSensitive);
                    if (name == "min" ? c < 0 : c > 0) best = item;
                }

                return best;
            case "sort":
                return Sort(interpreter, value, args);
            case "unique":
                var uniqueCase = Values.IsTruthy(args.Get(0, "case_sensitive", false));
                var uniqueAttribute = args.Get(1, "attribute");
                var seen = new List<object?>();
                var unique = new List<object?>();
                foreach (var item in Values.Iterate(value))
                {
                    var key = Key(interpreter, item, uniqueAttribute);
                    if (!uniqueCase && key is string s) key = s.ToLowerInvariant();
                    if (seen.Exists(k => Values.Equals(k, key))) continue;
                    seen.Add(key);
                    unique.Add(item);
                }

                return unique;
            case "map":
                return Map(interpreter, value, args, at);
            case "select" or "reject":
                return Values.Iterate(value).Where(item => Select(interpreter, item, args, 0) == (name == "select")).ToList();
            case "selectattr" or "rejectattr":
                var attr = args.Get(0, "attribute") ?? throw new InvalidOperationException($"{name} needs an attribute name");
                return Values.Iterate(value)
                    .Where(item => Select(interpreter, Attribute(interpreter, item, attr), args, 1) == (name == "selectattr")).ToList();
            case "attr":
                return Members.Get(interpreter, value, args.Get(0, "name"));
            default:
                throw new InvalidOperationException($"No filter named '{name}'.");
        }
    }

    private static string Text(object? value, string filter) => value switch
    {
        string s => s,
        Undefined or null => "",
        _ => Values.ToText(value),
    };

    [GeneratedRegex(@"\w+")]
    private static partial Regex WordPattern();

    /// <summary>An item's attribute by a dotted path (<c>'function.name'</c>, <c>'0'</c> for an index).</summary>
    public static object? Attribute(Interpreter interpreter, object? item, object? path)
    {
        if (path is long index) return Members.Get(interpreter, item, index);
        foreach (var part in Values.ToText(path).Split('.'))
        {
            item = Members.Get(interpreter, item, long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && item is List<object?> ? i : part);
        }

        return item;
    }

    private static object? Key(Interpreter interpreter, object? item, object? attribute) =>
        attribute is null or Undefined ? item : Attribute(interpreter, item, attribute);

    private static bool Select(Interpreter interpreter, object? item, CallArguments args, int testIndex)
    {
        if (args.Positional.Count <= testIndex) return Values.IsTruthy(item);
        var test = Values.ToText(args.Positional[testIndex]);
        var testArgs = new CallArguments(args.Positional.Skip(testIndex + 1).ToList(), []);
        return JinjaTests.Run(interpreter, test, item, testArgs);
    }

    private static List<object?> Map(Interpreter interpreter, object? value, CallArguments args, Node at)
    {
        var items = Values.Iterate(value);
        if (args.Positional.Count == 0 || args.Named.Exists(p => p.Name == "attribute"))
        {
            var attribute = args.GetNamed("attribute") ?? throw new InvalidOperationException("map needs a filter name or attribute=");
            var fallback = args.GetNamed("default", Undefined.Instance);
            return items.Select(x => Attribute(interpreter, x, attribute) is Undefined && fallback is not Undefined ? fallback : Attribute(interpreter, x, attribute)).ToList();
        }

        var filter = Values.ToText(args.Positional[0]);
        var rest = new CallArguments(args.Positional.Skip(1).ToList(), args.Named);
        return items.Select(x => Apply(interpreter, filter, x, rest, at)).ToList();
    }

    private static List<object?> Sort(Interpreter interpreter, object? value, CallArguments args)
    {
        var reverse = Values.IsTruthy(args.Get(0, "reverse", false));
        var caseSensitive = Values.IsTruthy(args.Get(1, "case_sensitive", false));
        var attribute = args.Get(2, "attribute");
        var items = Values.Iterate(value).Select((x, i) => (Item: x, Key: Key(interpreter, x, attribute), Index: i)).ToList();
        items.Sort((a, b) =>
        {
            var c = Values.Compare(a.Key, b.Key, caseSensitive);
            return c != 0 ? (reverse ? -c : c) : a.Index.CompareTo(b.Index);
        });
        return items.Select(x => x.Item).ToList();
    }

    private static List<object?> DictSort(object? value, CallArguments args)
    {
        if (value is not OrderedDictionary<string, object?> dict) throw new InvalidOperationException($"dictsort needs a dict, not a {Values.TypeName(value)}");
        var caseSensitive = Values.IsTruthy(args.Get(0, "case_sensitive", false));
        var byValue = Values.ToText(args.Get(1, "by", "key")) == "value";
        var reverse = Values.IsTruthy(args.Get(2, "reverse", false));
        var pairs = dict.ToList();
        pairs.Sort((a, b) =>
        {
            var c = byValue ? Values.Compare(a.Value, b.Value, caseSensitive) : Values.Compare(a.Key, b.Key, caseSensitive);
            return reverse ? -c : c;
        });
        return pairs.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList();
    }

    private static object? ToInt(object? value, object? fallback) => value switch
    {
        long l => l,
        bool b => b ? 1L : 0L,
        double d => double.IsFinite(d) ? (long)Math.Truncate(d) : fallback,
        string s when long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) => l,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) => (long)Math.Truncate(d),
        _ => fallback,
    };

    private static object? ToFloat(object? value, object? fallback) => value switch
    {
        long l => (double)l,
        double d => d,
        bool b => b ? 1.0 : 0.0,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => fallback,
    };

    private static double Round(object? value, CallArguments args)
    {
        var number = Values.ToDouble(value);
        var precision = args.Get(0, "precision", 0L) is long p ? (int)Math.Clamp(p, 0, 15) : 0;
        var scale = Math.Pow(10, precision);
        return Values.ToText(args.Get(1, "method", "common")) switch
        {
            "ceil" => Math.Ceiling(number * scale) / scale,
            "floor" => Math.Floor(number * scale) / scale,
            _ => Math.Round(number, precision, MidpointRounding.AwayFromZero),
        };
    }

    /// <summary>Jinja's indent: every line but the first (unless <paramref name="first"/>) and blank ones (unless <paramref name="blank"/>).</summary>
    private static string Indent(string text, object? width, bool first, bool blank)
    {
        var prefix = width switch
        {
            string s => s,
            long n => new string(' ', (int)Math.Clamp(n, 0, 1024)),
            _ => "    ",
        };
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if ((i > 0 || first) && (blank || lines[i].Length > 0)) lines[i] = prefix + lines[i];
        }

        return string.Join('\n', lines);
    }
}
