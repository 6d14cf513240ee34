using System.Text;

namespace OnnxLM.Chat.Jinja;

/// <summary>
/// Attribute and item access (<c>a.b</c>, <c>a[b]</c>, slices) and the methods of strings and dicts that chat
/// templates call (<c>content.strip()</c>, <c>message.get('x')</c>, <c>tools.items()</c>). A missing key, index or
/// attribute is undefined, not an error, as in Jinja.
/// </summary>
internal static class Members
{
    public static object? Get(Interpreter interpreter, object? target, object? key)
    {
        switch (target)
        {
            case OrderedDictionary<string, object?> dict:
                if (key is string k && dict.TryGetValue(k, out var value)) return value;
                return key is string name ? DictMethod(dict, name) : Undefined.Instance;
            case Namespace ns:
                return key is string n && ns.Values.TryGetValue(n, out var v) ? v : Undefined.Instance;
            case List<object?> list:
                if (key is long or bool && Index(key, list.Count) is { } i) return list[i];
                return Undefined.Instance;
            case string s:
                if (key is long or bool)
                {
                    var chars = Values.Characters(s);
                    return Index(key, chars.Count) is { } c ? chars[c] : Undefined.Instance;
                }

                return key is string method ? StringMethod(interpreter, s, method) : Undefined.Instance;
            default:
                return Undefined.Instance;
        }
    }

    private static int? Index(object? key, int count)
    {
        var i = key is bool b ? (b ? 1L : 0L) : (long)key!;
        if (i < 0) i += count;
        return i >= 0 && i < count ? (int)i : null;
    }

    public static object? Slice(object? target, long? start, long? stop, long? step)
    {
        var items = target switch
        {
            List<object?> list => list,
            string s => Values.Characters(s),
            _ => throw new InvalidOperationException($"a {Values.TypeName(target)} cannot be sliced"),
        };
        var st = step ?? 1;
        if (st == 0) throw new InvalidOperationException("slice step cannot be zero");
        var n = (long)items.Count;
        long Clamp(long? v, long low, long high, long fallback)
        {
            if (v is not { } x) return fallback;
            if (x < 0) x += n;
            return Math.Clamp(x, low, high);
        }

        var result = new List<object?>();
        if (st > 0)
        {
            for (var i = Clamp(start, 0, n, 0); i < Clamp(stop, 0, n, n); i += st) result.Add(items[(int)i]);
        }
        else
        {
            for (var i = Clamp(start, -1, n - 1, n - 1); i > Clamp(stop, -1, n - 1, -1); i += st) result.Add(items[(int)i]);
        }

        return target is string ? string.Concat(result.Cast<string>()) : result;
    }

    private static object? DictMethod(OrderedDictionary<string, object?> dict, string name) => name switch
    {
        "items" => new Function("items", _ => dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList()),
        "keys" => new Function("keys", _ => dict.Keys.Cast<object?>().ToList()),
        "values" => new Function("values", _ => dict.Values.ToList()),
        "get" => new Function("get", a => a.Get(0, "key") is string key && dict.TryGetValue(key, out var v) ? v : a.Get(1, "default")),
        _ => Undefined.Instance,
    };

    private static object? StringMethod(Interpreter interpreter, string s, string name) => name switch
    {
        "strip" => new Function(name, a => Strip(s, a.Get(0, "chars"), true, true)),
        "lstrip" => new Function(name, a => Strip(s, a.Get(0, "chars"), true, false)),
        "rstrip" => new Function(name, a => Strip(s, a.Get(0, "chars"), false, true)),
        "upper" => new Function(name, _ => s.ToUpperInvariant()),
        "lower" => new Function(name, _ => s.ToLowerInvariant()),
        "title" => new Function(name, _ => Title(s)),
        "capitalize" => new Function(name, _ => Capitalize(s)),
        "startswith" => new Function(name, a => Affix(s, a.Get(0, "prefix"), (t, p) => t.StartsWith(p, StringComparison.Ordinal))),
        "endswith" => new Function(name, a => Affix(s, a.Get(0, "suffix"), (t, p) => t.EndsWith(p, StringComparison.Ordinal))),
        "split" => new Function(name, a => Split(s, a.Get(0, "sep"), a.Get(1, "maxsplit", -1L))),
        "replace" => new Function(name, a => Replace(interpreter, s, a.Get(0, "old"), a.Get(1, "new"), a.Get(2, "count", -1L))),
        "find" => new Function(name, a => (long)s.IndexOf(a.Get(0, "sub") as string ?? throw new InvalidOperationException("find() needs a string"), StringComparison.Ordinal)),
        "count" => new Function(name, a => (long)Count(s, a.Get(0, "sub") as string ?? throw new InvalidOperationException("count() needs a string"))),
        "join" => new Function(name, a => string.Join(s, Values.Iterate(a.Get(0, "iterable")).Select(Values.ToText))),
        "isdigit" => new Function(name, _ => s.Length > 0 && s.All(char.IsDigit)),
        "isspace" => new Function(name, _ => s.Length > 0 && s.All(char.IsWhiteSpace)),
        "isalpha" => new Function(name, _ => s.Length > 0 && s.All(char.IsLetter)),
        "isupper" => new Function(name, _ => s.Any(char.IsLetter) && s == s.ToUpperInvariant()),
        "islower" => new Function(name, _ => s.Any(char.IsLetter) && s == s.ToLowerInvariant()),
        "length" => (long)Values.CodePointCount(s),
        _ => Undefined.Instance,
    };

    private static bool Affix(string s, object? arg, Func<string, string, bool> test) => arg switch
    {
        string p => test(s, p),
        List<object?> options => options.Exists(o => o is string p && test(s, p)),
        _ => throw new InvalidOperationException($"startswith/endswith need a string or a tuple of strings, not a {Values.TypeName(arg)}"),
    };

    public static string Strip(string s, object? chars, bool left, bool right)
    {
        if (chars is null or Undefined)
        {
            return left && right ? s.Trim() : left ? s.TrimStart() : s.TrimEnd();
        }

        var set = chars as string ?? throw new InvalidOperationException("strip() needs a string of characters");
        var start = 0;
        var end = s.Length;
        while (left && start < end && set.Contains(s[start])) start++;
        while (right && end > start && set.Contains(s[end - 1])) end--;
        return s[start..end];
    }

    /// <summary>Python's <c>str.split</c>: on runs of whitespace without a separator, else on each separator, at most <c>maxsplit</c> times.</summary>
    public static List<object?> Split(string s, object? separator, object? maxSplit)
    {
        var max = maxSplit is long m ? m : -1;
        var result = new List<object?>();
        if (separator is null or Undefined)
        {
            var i = 0;
            while (true)
            {
                while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (max >= 0 && result.Count >= max)
                {
                    result.Add(s[i..].TrimEnd());
                    break;
                }

                var start = i;
                while (i < s.Length && !char.IsWhiteSpace(s[i])) i++;
                result.Add(s[start..i]);
            }

            return result;
        }

        var sep = separator as string ?? throw new InvalidOperationException("split() needs a string separator");
        if (sep.Length == 0) throw new InvalidOperationException("empty separator");
        var pos = 0;
        while (max < 0 || result.Count < max)
        {
            var next = s.IndexOf(sep, pos, StringComparison.Ordinal);
            if (next < 0) break;
            result.Add(s[pos..next]);
            pos = next + sep.Length;
        }

        result.Add(s[pos..]);
        return result;
    }

    public static string Replace(Interpreter interpreter, string s, object? oldValue, object? newValue, object? count)
    {
        if (oldValue is not string old || newValue is not string replacement)
        {
            throw new InvalidOperationException("replace() needs two strings");
        }

        var max = count is long c ? c : -1;
        var sb = new StringBuilder();
        var pos = 0;
        var done = 0L;
        if (old.Length == 0)
        {
            // Python inserts the replacement between every character (and at both ends).
            foreach (var rune in s.EnumerateRunes())
            {
                if (max < 0 || done < max) { sb.Append(replacement); done++; }
                sb.Append(rune.ToString());
            }

            if (max < 0 || done < max) sb.Append(replacement);
            return sb.ToString();
        }

        while (max < 0 || done < max)
        {
            var next = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (next < 0) break;
            sb.Append(s, pos, next - pos).Append(replacement);
            interpreter.CheckLength(sb.Length);
            pos = next + old.Length;
            done++;
        }

        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    private static int Count(string s, string sub)
    {
        if (sub.Length == 0) return Values.CodePointCount(s) + 1;
        var count = 0;
        for (var i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) count++;
        return count;
    }

    /// <summary>Python's <c>str.title</c>: a letter after a non-letter is upper-cased, every other letter lower-cased.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        var previousLetter = false;
        foreach (var rune in s.EnumerateRunes())
        {
            var letter = Rune.IsLetter(rune);
            sb.Append((letter && !previousLetter ? Rune.ToUpperInvariant(rune) : Rune.ToLowerInvariant(rune)).ToString());
            previousLetter = letter;
        }

        return sb.ToString();
    }

    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();
}
