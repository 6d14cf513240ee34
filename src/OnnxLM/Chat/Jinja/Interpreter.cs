using System.Text;

namespace OnnxLM.Chat.Jinja;

/// <summary>
/// Walks the syntax tree and renders it. One interpreter serves one render: it owns the counters behind the bounds
/// of <see cref="TemplateOptions"/> (output size, loop iterations, macro call depth).
/// </summary>
internal sealed class Interpreter
{
    private enum Flow { Normal, Break, Continue }

    private readonly TemplateOptions _options;
    private long _iterations;
    private int _callDepth;

    public Interpreter(TemplateOptions options) => _options = options;

    public TemplateOptions Options => _options;

    public string Render(IReadOnlyList<Stmt> body, Scope scope)
    {
        var output = new StringBuilder();
        Exec(body, scope, output);
        return output.ToString();
    }

    /// <summary>Fails when a string or list built during rendering would pass the output bound.</summary>
    public void CheckLength(long length)
    {
        if (length > _options.MaxOutputLength)
        {
            throw new LimitReachedException($"The template produced more than {_options.MaxOutputLength} characters (TemplateOptions.MaxOutputLength).");
        }
    }

    /// <summary>Counts loop iterations (and items of ranges built) against the iteration bound.</summary>
    public void CountIterations(long count)
    {
        _iterations += count;
        if (_iterations > _options.MaxIterations)
        {
            throw new LimitReachedException($"The template ran more than {_options.MaxIterations} loop iterations (TemplateOptions.MaxIterations).");
        }
    }

    /// <summary>Raised deep inside a helper; the statement or expression around it adds the position.</summary>
    internal sealed class LimitReachedException(string message) : InvalidOperationException(message);

    private static TemplateException Positioned(Exception ex, Node at) => ex switch
    {
        LimitReachedException => new TemplateLimitExceededException(ex.Message, at.Line, at.Column),
        JinjaTemplate.RaiseSignal => new TemplateRaisedException(ex.Message, at.Line, at.Column),
        _ => new TemplateException(ex.Message, at.Line, at.Column, ex),
    };

    private void Append(StringBuilder output, string text)
    {
        CheckLength((long)output.Length + text.Length);
        output.Append(text);
    }

    private Flow Exec(IReadOnlyList<Stmt> body, Scope scope, StringBuilder output)
    {
        foreach (var stmt in body)
        {
            var flow = Exec(stmt, scope, output);
            if (flow != Flow.Normal) return flow;
        }

        return Flow.Normal;
    }

    private Flow Exec(Stmt stmt, Scope scope, StringBuilder output)
    {
        try
        {
            switch (stmt)
            {
                case TextStmt text:
                    Append(output, text.Text);
                    return Flow.Normal;
                case OutputStmt o:
                    Append(output, Values.ToText(Eval(o.Value, scope)));
                    return Flow.Normal;
                case IfStmt i:
                    foreach (var (test, branch) in i.Branches)
                    {
                        if (Values.IsTruthy(Eval(test, scope))) return Exec(branch, scope, output);
                    }

                    return Exec(i.Else, scope, output);
                case ForStmt f:
                    ExecFor(f, scope, output);
                    return Flow.Normal;
                case SetStmt s:
                    ExecSet(s, scope);
                    return Flow.Normal;
                case SetBlockStmt sb:
                    scope.Set(sb.Target, RenderFiltered(sb.Body, sb.Filters, scope));
                    return Flow.Normal;
                case MacroStmt m:
                    scope.Set(m.Name, MakeMacro(m.Name, m.Parameters, m.Body, scope, m));
                    return Flow.Normal;
                case CallBlockStmt c:
                    var caller = MakeMacro("caller", c.CallerParameters, c.Body, scope, c);
                    var callee = Eval(c.Call.Callee, scope) as Function
                        ?? throw new TemplateException("'{% call %}' names something that is not a macro.", c.Line, c.Column);
                    var args = EvalArguments(c.Call.Args, scope);
                    args.Named.Add(("caller", caller));
                    Append(output, Values.ToText(callee.Invoke(args)));
                    return Flow.Normal;
                case FilterBlockStmt fb:
                    Append(output, Values.ToText(RenderFiltered(fb.Body, fb.Filters, scope)));
                    return Flow.Normal;
                case BreakStmt:
                    return Flow.Break;
                case ContinueStmt:
                    return Flow.Continue;
                default:
                    throw new TemplateException($"Unsupported statement {stmt.GetType().Name}.", stmt.Line, stmt.Column);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or OverflowException or FormatException)
        {
            throw Positioned(ex, stmt);
        }
    }

    private void ExecFor(ForStmt f, Scope scope, StringBuilder output)
    {
        var source = Eval(f.Iterable, scope);
        var items = Values.Iterate(source);
        var loopScope = new Scope(scope);
        if (f.Filter is not null)
        {
            var kept = new List<object?>();
            foreach (var item in items)
            {
                CountIterations(1);
                Bind(loopScope, f.Targets, item, f);
                if (Values.IsTruthy(Eval(f.Filter, loopScope))) kept.Add(item);
            }

            items = kept;
        }

        if (items.Count == 0)
        {
            Exec(f.Else, loopScope, output);
            return;
        }

        var count = items.Count;
        for (var i = 0; i < count; i++)
        {
            CountIterations(1);
            var loop = new OrderedDictionary<string, object?>
            {
                ["index"] = (long)(i + 1),
                ["index0"] = (long)i,
                ["revindex"] = (long)(count - i),
                ["revindex0"] = (long)(count - i - 1),
                ["first"] = i == 0,
                ["last"] = i == count - 1,
                ["length"] = (long)count,
                ["previtem"] = i > 0 ? items[i - 1] : Undefined.Instance,
                ["nextitem"] = i + 1 < count ? items[i + 1] : Undefined.Instance,
                ["depth"] = 1L,
                ["depth0"] = 0L,
            };
            var index = i;
            loop["cycle"] = new Function("loop.cycle", a => a.Positional.Count == 0
                ? throw new InvalidOperationException("loop.cycle() needs at least one argument")
                : a.Positional[index % a.Positional.Count]);
            loopScope.Set("loop", loop);
            Bind(loopScope, f.Targets, items[i], f);
            if (Exec(f.Body, loopScope, output) == Flow.Break) break;
        }
    }

    private static void Bind(Scope scope, IReadOnlyList<string> targets, object? value, Node at)
    {
        if (targets.Count == 1)
        {
            scope.Set(targets[0], value);
            return;
        }

        var parts = value is List<object?> or string ? Values.Iterate(value) : throw new TemplateException(
            $"Cannot unpack a {Values.TypeName(value)} into {targets.Count} variables.", at.Line, at.Column);
        if (parts.Count != targets.Count)
        {
            throw new TemplateException($"Cannot unpack {parts.Count} values into {targets.Count} variables.", at.Line, at.Column);
        }

        for (var i = 0; i < targets.Count; i++) scope.Set(targets[i], parts[i]);
    }

    private void ExecSet(SetStmt s, Scope scope)
    {
        var value = Eval(s.Value, scope);
        if (s.Targets.Count == 0)
        {
            return; // {% do %}
        }

        if (s.Attribute is { } attribute)
        {
            if (scope.Lookup(s.Targets[0]) is not Namespace ns)
            {
                throw new TemplateException($"'{s.Targets[0]}' is not a namespace, so '{s.Targets[0]}.{attribute}' cannot be assigned.", s.Line, s.Column);
            }

            ns.Values[attribute] = value;
            return;
        }

        Bind(scope, s.Targets, value, s);
    }

    private Function MakeMacro(string name, IReadOnlyList<(string Name, Expr? Default)> parameters, IReadOnlyList<Stmt> body, Scope definition, Node at)
    {
        return new Function(name, args =>
        {
            try
            {
                if (++_callDepth > _options.MaxCallDepth)
                {
                    throw new LimitReachedException($"Macro calls nest deeper than {_options.MaxCallDepth} (TemplateOptions.MaxCallDepth).");
                }

                var scope = new Scope(definition);
                var named = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (key, value) in args.Named) named[key] = value;
                for (var i = 0; i < parameters.Count; i++)
                {
                    var (param, fallback) = parameters[i];
                    if (i < args.Positional.Count) scope.Set(param, args.Positional[i]);
                    else if (named.Remove(param, out var v)) scope.Set(param, v);
                    else scope.Set(param, fallback is null ? Undefined.Instance : Eval(fallback, scope));
                }

                scope.Set("varargs", args.Positional.Skip(parameters.Count).ToList());
                if (named.Remove("caller", out var caller)) scope.Set("caller", caller);
                var kwargs = new OrderedDictionary<string, object?>();
                foreach (var (key, value) in named) kwargs[key] = value;
                scope.Set("kwargs", kwargs);
                var output = new StringBuilder();
                Exec(body, scope, output);
                return output.ToString();
            }
            finally
            {
                _callDepth--;
            }
        });
    }

    public CallArguments EvalArguments(Arguments args, Scope scope)
    {
        var positional = new List<object?>(args.Positional.Count);
        foreach (var a in args.Positional) positional.Add(Eval(a, scope));
        var named = new List<(string, object?)>(args.Named.Count);
        foreach (var (name, value) in args.Named) named.Add((name, Eval(value, scope)));
        return new CallArguments(positional, named);
    }

    private object? ApplyFilter(FilterExpr filter, object? operand, Scope scope) =>
        Filters.Apply(this, filter.Name, operand, EvalArguments(filter.Args, scope), filter);

    /// <summary>Renders a block body to text and pipes it through the block's filters ({% set %}…{% endset %}, {% filter %}).</summary>
    private object? RenderFiltered(IReadOnlyList<Stmt> body, IReadOnlyList<FilterExpr> filters, Scope scope)
    {
        var rendered = new StringBuilder();
        Exec(body, scope, rendered);
        object? value = rendered.ToString();
        foreach (var filter in filters) value = ApplyFilter(filter, value, scope);
        return value;
    }

    public object? Eval(Expr expr, Scope scope)
    {
        try
        {
            return expr switch
            {
                LiteralExpr l => l.Value,
                NameExpr n => scope.Lookup(n.Name),
                ListExpr list => list.Items.Select(i => Eval(i, scope)).ToList(),
                DictExpr d => EvalDict(d, scope),
                GetItemExpr g => Members.Get(this, Eval(g.Target, scope), Eval(g.Key, scope)),
                SliceExpr s => Members.Slice(Eval(s.Target, scope), EvalIndex(s.Start, scope), EvalIndex(s.Stop, scope), EvalIndex(s.Step, scope)),
                CallExpr c => EvalCall(c, scope),
                FilterExpr f => ApplyFilter(f, Eval(f.Operand, scope), scope),
                TestExpr t => JinjaTests.Run(this, t.Name, Eval(t.Operand, scope), EvalArguments(t.Args, scope)) != t.Negated,
                UnaryExpr u => EvalUnary(u, scope),
                BinaryExpr b => EvalBinary(b, scope),
                CompareExpr c => EvalCompare(c, scope),
                ConditionalExpr c => Values.IsTruthy(Eval(c.Test, scope)) ? Eval(c.Then, scope) : c.Else is null ? Undefined.Instance : Eval(c.Else, scope),
                _ => throw new TemplateException($"Unsupported expression {expr.GetType().Name}.", expr.Line, expr.Column),
            };
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or OverflowException or FormatException)
        {
            throw Positioned(ex, expr);
        }
    }

    private long? EvalIndex(Expr? expr, Scope scope)
    {
        if (expr is null) return null;
        return Eval(expr, scope) switch
        {
            null or Undefined => null,
            long l => l,
            bool b => b ? 1 : 0,
            var other => throw new InvalidOperationException($"slice indices must be integers or none, not a {Values.TypeName(other)}"),
        };
    }

    private OrderedDictionary<string, object?> EvalDict(DictExpr d, Scope scope)
    {
        var dict = new OrderedDictionary<string, object?>();
        foreach (var (key, value) in d.Pairs) dict[Values.ToText(Eval(key, scope))] = Eval(value, scope);
        return dict;
    }

    private object? EvalCall(CallExpr c, Scope scope)
    {
        var callee = Eval(c.Callee, scope);
        if (callee is not Function function)
        {
            var what = c.Callee is NameExpr n ? $"'{n.Name}'" : c.Callee is GetItemExpr { Key: LiteralExpr { Value: string m } } ? $"'{m}'" : "the expression";
            throw new TemplateException(callee is Undefined ? $"{what} is undefined and cannot be called." : $"{what} is a {Values.TypeName(callee)}, not a function.", c.Line, c.Column);
        }

        return function.Invoke(EvalArguments(c.Args, scope));
    }

    private object? EvalUnary(UnaryExpr u, Scope scope)
    {
        var value = Eval(u.Operand, scope);
        return u.Operator switch
        {
            "not" => !Values.IsTruthy(value),
            "-" => value switch
            {
                long l => (object)checked(-l), // object arms: a long arm beside a double one would widen to double
                double d => -d,
                bool b => b ? -1L : 0L,
                _ => throw new InvalidOperationException($"bad operand for unary -: a {Values.TypeName(value)}"),
            },
            _ => value is long or double ? value : value is bool b2 ? (b2 ? 1L : 0L)
                : throw new InvalidOperationException($"bad operand for unary +: a {Values.TypeName(value)}"),
        };
    }

    private object? EvalBinary(BinaryExpr b, Scope scope)
    {
        var left = Eval(b.Left, scope);
        switch (b.Operator)
        {
            case "and":
                return Values.IsTruthy(left) ? Eval(b.Right, scope) : left;
            case "or":
                return Values.IsTruthy(left) ? left : Eval(b.Right, scope);
        }

        var right = Eval(b.Right, scope);
        if (b.Operator == "~")
        {
            var text = Values.ToText(left) + Values.ToText(right);
            CheckLength(text.Length);
            return text;
        }

        return Operators.Arithmetic(this, b.Operator, left, right);
    }

    private bool EvalCompare(CompareExpr c, Scope scope)
    {
        var left = Eval(c.First, scope);
        foreach (var (op, operand) in c.Rest)
        {
            var right = Eval(operand, scope);
            if (!Operators.Compare(op, left, right)) return false;
            left = right;
        }

        return true;
    }
}
