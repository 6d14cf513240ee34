using System.Globalization;
using OnnxLM.Chat.Jinja;

namespace OnnxLM.Chat;

/// <summary>
/// A Jinja template parsed once and rendered many times — the engine behind chat templates. It implements what
/// real chat templates use (statements <c>if</c>/<c>for</c>/<c>set</c>/<c>macro</c>/<c>call</c>/<c>filter</c>,
/// <c>break</c>/<c>continue</c>, <c>generation</c>; Jinja's expressions, filters, tests and string/dict methods; the
/// globals <c>raise_exception</c>, <c>strftime_now</c>, <c>range</c>, <c>dict</c>, <c>namespace</c>), renders values
/// as transformers.js does, and treats the template as untrusted: no file access, no reflection over .NET objects,
/// bounded work, output, nesting and time (<see cref="TemplateOptions"/>). Thread-safe: a parsed template is immutable.
/// </summary>
internal sealed class JinjaTemplate
{
    private readonly IReadOnlyList<Stmt> _body;
    private readonly TemplateOptions _options;

    private JinjaTemplate(string source, IReadOnlyList<Stmt> body, TemplateOptions options)
    {
        Source = source;
        _body = body;
        _options = options;
    }

    /// <summary>The template text as given.</summary>
    public string Source { get; }

    /// <summary>Parses a template.</summary>
    /// <param name="source">The template text.</param>
    /// <param name="options">Whitespace settings and bounds; null for transformers' settings and the default bounds.</param>
    /// <exception cref="TemplateSyntaxException">The template is not valid, or uses unsupported syntax; the message names the line and column.</exception>
    /// <exception cref="TemplateLimitExceededException">The template nests deeper than <see cref="TemplateOptions.MaxDepth"/>.</exception>
    public static JinjaTemplate Parse(string source, TemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        options ??= TemplateOptions.Default;
        return new JinjaTemplate(source, Parser.Parse(Lexer.Tokenize(source, options), options.MaxDepth), options);
    }

    /// <summary>Renders the template with the given variables.</summary>
    /// <param name="variables">
    /// Top-level variables: strings, numbers, booleans, null, lists, string-keyed dictionaries
    /// (<c>IDictionary&lt;string, object?&gt;</c>) and <see cref="System.Text.Json.JsonElement"/>/<see cref="System.Text.Json.Nodes.JsonNode"/> values, nested freely.
    /// </param>
    /// <exception cref="TemplateRaisedException">The template called <c>raise_exception</c>; the message is the template's.</exception>
    /// <param name="cancellationToken">Stops the render with <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="TemplateLimitExceededException">Rendering went past a bound of <see cref="TemplateOptions"/> (steps, output, depth, time).</exception>
    /// <exception cref="TemplateException">Any other error while rendering (wrong types, unknown filter), with its position.</exception>
    /// <exception cref="ArgumentException">A variable has a type that cannot be passed to a template.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public string Render(IEnumerable<KeyValuePair<string, object?>>? variables = null, CancellationToken cancellationToken = default) =>
        Render(variables, null, cancellationToken, out _);

    /// <summary>
    /// Renders and hands back the interpreter, whose counters tell what the render used (for measuring real templates);
    /// <paramref name="clock"/>, when given, is what <c>strftime_now</c> reads instead of <see cref="TemplateOptions.Clock"/>.
    /// </summary>
    internal string Render(IEnumerable<KeyValuePair<string, object?>>? variables, TimeProvider? clock, CancellationToken cancellationToken, out Interpreter interpreter)
    {
        interpreter = new Interpreter(_options, cancellationToken);
        var scope = new Scope(Globals(interpreter, clock ?? _options.Clock));
        if (variables is not null)
        {
            foreach (var (name, value) in variables) scope.Set(name, Values.FromDotNet(value));
        }

        return interpreter.Render(_body, scope);
    }

    /// <summary>
    /// Whether a <c>for</c> loop of the template goes through an item or attribute named <paramref name="key"/> of
    /// something (<c>for part in message['content']</c>): the sign, as vLLM reads it, that a chat template takes
    /// content as a list of parts rather than a string.
    /// </summary>
    internal bool LoopsOver(string key) => LoopsOver(_body, key);

    private static bool LoopsOver(IReadOnlyList<Stmt> body, string key)
    {
        foreach (var stmt in body)
        {
            var found = stmt switch
            {
                ForStmt f => f.Iterable is GetItemExpr { Key: LiteralExpr { Value: string k } } && k == key || LoopsOver(f.Body, key) || LoopsOver(f.Else, key),
                IfStmt i => i.Branches.Any(b => LoopsOver(b.Body, key)) || LoopsOver(i.Else, key),
                SetBlockStmt b => LoopsOver(b.Body, key),
                MacroStmt m => LoopsOver(m.Body, key),
                CallBlockStmt c => LoopsOver(c.Body, key),
                FilterBlockStmt fb => LoopsOver(fb.Body, key),
                _ => false,
            };
            if (found) return true;
        }

        return false;
    }

    private Scope Globals(Interpreter interpreter, TimeProvider clock)
    {
        var globals = new Scope(null);
        globals.Set("raise_exception", new Function("raise_exception", a =>
            throw new RaiseSignal(Values.ToText(a.Get(0, "message", "")))));
        globals.Set("range", new Function("range", a => Range(interpreter, a)));
        globals.Set("dict", new Function("dict", a =>
        {
            var dict = new OrderedDictionary<string, object?>();
            if (a.Positional.Count > 0 && a.Positional[0] is OrderedDictionary<string, object?> source)
            {
                foreach (var (k, v) in source) dict[k] = v;
            }

            foreach (var (k, v) in a.Named) dict[k] = v;
            return dict;
        }));
        globals.Set("namespace", new Function("namespace", a =>
        {
            var values = new OrderedDictionary<string, object?>();
            if (a.Positional.Count > 0 && a.Positional[0] is OrderedDictionary<string, object?> source)
            {
                foreach (var (k, v) in source) values[k] = v;
            }

            foreach (var (k, v) in a.Named) values[k] = v;
            return new Namespace(values);
        }));
        globals.Set("strftime_now", new Function("strftime_now", a => Strftime(Values.ToText(a.Get(0, "format", "")), TimeZoneInfo.ConvertTime(clock.GetUtcNow(), _options.TimeZone))));
        return globals;
    }

    private static List<object?> Range(Interpreter interpreter, CallArguments a)
    {
        long Arg(int i) => a.Positional[i] is long l ? l : a.Positional[i] is bool b ? (b ? 1 : 0)
            : throw new InvalidOperationException($"range() needs integers, not a {Values.TypeName(a.Positional[i])}");
        var (start, stop, step) = a.Positional.Count switch
        {
            1 => (0L, Arg(0), 1L),
            2 => (Arg(0), Arg(1), 1L),
            3 => (Arg(0), Arg(1), Arg(2)),
            _ => throw new InvalidOperationException("range() takes one to three integers"),
        };
        if (step == 0) throw new InvalidOperationException("range() step must not be zero");
        var count = step > 0 ? Math.Max(0, (stop - start + step - 1) / step) : Math.Max(0, (start - stop - step - 1) / -step);
        // Bounded before the list is built, so a huge range fails without allocating it: by size like any list, and by work.
        if (count > interpreter.Options.MaxOutputLength)
        {
            throw new Interpreter.LimitReachedException($"range() of {count} items is longer than TemplateOptions.MaxOutputLength ({interpreter.Options.MaxOutputLength}).");
        }

        interpreter.Charge(count);

        var result = new List<object?>((int)count);
        for (var i = 0L; i < count; i++) result.Add(start + (i * step));
        return result;
    }

    /// <summary>Python's <c>strftime</c> for the directives templates use (Llama 3.1 and Granite put today's date in the system prompt).</summary>
    internal static string Strftime(string format, DateTimeOffset now)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                sb.Append(format[i]);
                continue;
            }

            var d = format[++i];
            sb.Append(d switch
            {
                'd' => now.ToString("dd", c),
                '-' when i + 1 < format.Length && format[i + 1] == 'd' && ++i > 0 => now.Day.ToString(c),
                'm' => now.ToString("MM", c),
                'y' => now.ToString("yy", c),
                'Y' => now.Year.ToString(c),
                'b' or 'h' => now.ToString("MMM", c),
                'B' => now.ToString("MMMM", c),
                'a' => now.ToString("ddd", c),
                'A' => now.ToString("dddd", c),
                'H' => now.ToString("HH", c),
                'I' => now.ToString("hh", c),
                'M' => now.ToString("mm", c),
                'S' => now.ToString("ss", c),
                'p' => now.Hour < 12 ? "AM" : "PM",
                'j' => now.DayOfYear.ToString("000", c),
                'w' => ((int)now.DayOfWeek).ToString(c),
                'Z' => "",
                'z' => now.ToString("zzz", c).Replace(":", "", StringComparison.Ordinal),
                '%' => "%",
                _ => "%" + d,
            });
        }

        return sb.ToString();
    }

    /// <summary>raise_exception's signal; the statement around the call turns it into a positioned <see cref="TemplateRaisedException"/>.</summary>
    internal sealed class RaiseSignal(string message) : InvalidOperationException(message);
}
