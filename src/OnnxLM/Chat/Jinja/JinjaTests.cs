namespace OnnxLM.Chat.Jinja;

/// <summary>Jinja's tests, the right-hand side of <c>x is defined</c>, <c>x is not none</c>, <c>n is divisibleby 3</c>.</summary>
internal static class JinjaTests
{
    public static bool Run(Interpreter interpreter, string name, object? value, CallArguments args)
    {
        var arg = args.Get(0, "other", Undefined.Instance);
        return name switch
        {
            "defined" => value is not Undefined,
            "undefined" => value is Undefined,
            "none" => value is null,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "integer" => value is long,
            "float" => value is double,
            "number" => value is long or double,
            "string" => value is string,
            "mapping" => value is OrderedDictionary<string, object?>,
            "iterable" => value is string or List<object?> or OrderedDictionary<string, object?>,
            "sequence" => value is string or List<object?> or OrderedDictionary<string, object?>,
            "callable" => value is Function,
            "odd" => Integer(value, name) % 2 != 0,
            "even" => Integer(value, name) % 2 == 0,
            "divisibleby" => Integer(arg, name) is var d && d != 0 && Integer(value, name) % d == 0,
            "eq" or "equalto" or "==" => Values.Equals(value, arg),
            "ne" or "!=" => !Values.Equals(value, arg),
            "lt" or "lessthan" or "<" => Values.Compare(value, arg) < 0,
            "le" or "<=" => Values.Compare(value, arg) <= 0,
            "gt" or "greaterthan" or ">" => Values.Compare(value, arg) > 0,
            "ge" or ">=" => Values.Compare(value, arg) >= 0,
            "in" => Operators.Contains(arg, value),
            "sameas" => ReferenceEquals(value, arg) || (value is null && arg is null) || (value is bool a && arg is bool b && a == b),
            "lower" => value is string s && s == s.ToLowerInvariant(),
            "upper" => value is string u && u == u.ToUpperInvariant(),
            _ => throw new InvalidOperationException($"No test named '{name}'."),
        };
    }

    private static long Integer(object? value, string test) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d when d == Math.Floor(d) => (long)d,
        _ => throw new InvalidOperationException($"the '{test}' test needs an integer, not a {Values.TypeName(value)}"),
    };
}
