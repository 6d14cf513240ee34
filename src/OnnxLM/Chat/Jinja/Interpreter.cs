using System.Runtime.CompilerServices;
using System.Text;

namespace OnnxLM.Chat.Jinja;

/// <summary>
/// Walks the syntax tree and renders it. One interpreter serves one render: it owns the counters behind the bounds
/// of <see cref="TemplateOptions"/> (steps, output size, depth, macro call depth, time) and the render's cancellation token.
/// </summary>
internal sealed class Interpreter
{
    private enum Flow { Normal, Break, Continue }

    // The token and the clock are looked at once per this many steps: often enough to stop within a millisecond or
    // so, rarely enough that the per-node cost stays one add and one compare.
    private const long CheckInterval = 4096;

    // A macro call and a loop iteration set up state (a scope, the loop variable's dict) that costs about as much as
    // this many plain expressions, so cheap-looking recursion or looping cannot outrun the budget's time.
    private const long MacroCallSteps = 10;
    private const long IterationSteps = 4;

    private readonly TemplateOptions _options;
    private readonly CancellationToken _cancellationToken;
    private readonly long _started;
    private long _steps;
    private long _nextCheck = CheckInterval;
    private int _depth;
    private int _callDepth;

    public Interpreter(TemplateOptions options, CancellationToken cancellationToken = default)
    {
        _options = options;
        _cancellationToken = cancellationToken;
        _started = options.Clock.GetTimestamp();
    }

    public TemplateOptions Options => _options;

    /// <summary>Steps taken so far (for measuring what real templates use).</summary>
    public long Steps => _steps;

    /// <summary>The deepest the render has nested so far (for measuring what real templates use).</summary>
    public int PeakDepth { get; private set; }

    public string Render(IReadOnlyList<Stmt> body, Scope scope)
    {
        _cancellationToken.ThrowIfCancellationRequested();
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

    /// <summary>Charges work against <see cref="TemplateOptions.MaxSteps"/>; every few thousand steps also checks the token and the time limit.</summary>
    public void Charge(long steps)
    {
        _steps += steps;
        if (_steps > _options.MaxSteps)
        {
            throw new LimitReachedException($"The template took more than {_options.MaxSteps} steps (TemplateOptions.MaxSteps; statements, expressions, loop iterations, macro calls and the size of values worked on all count).");
        }

        if (_steps >= _nextCheck)
        {
            _nextCheck = _steps + CheckInterval;
            _cancellationToken.ThrowIfCancellationRequested();
            if (_options.MaxRenderTime != Timeout.InfiniteTimeSpan && _options.Clock.GetElapsedTime(_started) > _options.MaxRenderTime)
            {
                throw new LimitReachedException($"The template took longer than {_options.MaxRenderTime.TotalSeconds:0.###} s to render (TemplateOptions.MaxRenderTime).");
            }
        }
    }

    /// <summary>The steps working on a value costs: one per item of a list or dict, one per 64 characters of a string.</summary>
    public static long Cost(object? value) => value switch
    {
        string s => s.Length / 64,
        List<object?> list => list.Count,
        OrderedDictionary<string, object?> dict => dict.Count,
        Namespace ns => ns.Values.Count,
        _ => 0,
    };

    /// <summary>
    /// One level deeper into the tree (or into a macro's body). Every recursive call of the walk passes here, so the
    /// stack is bounded by <see cref="TemplateOptions.MaxDepth"/> whatever the template's shape; the stack probe is a
    /// backstop for threads with small stacks.
    /// </summary>
    private void Descend()
    {
        if (++_depth > PeakDepth) PeakDepth = _depth;
        if (_depth > _options.MaxDepth)
        {
            throw new LimitReachedException($"The template nests deeper than {_options.MaxDepth} levels while rendering, counting the bodies of the macros it calls (TemplateOptions.MaxDepth).");
        }

        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            throw new LimitReachedException($"The template nests too deeply for this thread's stack at {_depth} levels; lower TemplateOptions.MaxDepth.");
        }
    }

    /// <summary>Raised deep inside a helper; the statement or expression around it adds the position.</summary>
    internal sealed class LimitReachedException(string message) : InvalidOperationException(message);

    private static TemplateException Positioned(Exception ex, Node at) => ex switch
    {
        LimitReachedException => new TemplateLimitExceededException(ex.Message, at.Line, at.Column),
        // List.Sort wraps what its comparison throws.
        InvalidOperationException { InnerException: LimitReachedException inner } => new TemplateLimitExceededException(inner.Message, at.Line, at.Column),
        JinjaTemplate.RaiseSignal => new TemplateRaisedException(ex.Message, at.Line, at.Column),
        _ => new TemplateException(ex.Message, at.Line, at.Column, ex),
    };

    private void Append(StringBuilder output, string text)
    {
        CheckLength((long)output.Length + text.Length);
        Charge(Cost(text));
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
            Descend();
            Charge(1);
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
        finally
        {
            _depth--;
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
                Charge(IterationSteps);
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
            Charge(IterationSteps);
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

                Charge(MacroCallSteps);
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

    private object? ApplyFilter(FilterExpr filter, object? operand, Scope scope)
    {
        // A filter goes over its operand and builds its result: both count, so repeating one on a big value is bounded
        // work. The few that only look at a list's ends or size do not go over it (templates call messages|length per message).
        if (!(operand is List<object?> && filter.Name is "length" or "count" or "first" or "last" or "default" or "d" or "safe")) Charge(Cost(operand));
        var result = Filters.Apply(this, filter.Name, operand, EvalArguments(filter.Args, scope), filter);
        Charge(Cost(result));
        return result;
    }

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
            Descend();
            Charge(1);
            return expr switch
            {
                LiteralExpr l => l.Value,
                NameExpr n => scope.Lookup(n.Name),
                ListExpr list => EvalList(list, scope),
                DictExpr d => EvalDict(d, scope),
                GetItemExpr g => EvalGetItem(g, scope),
                SliceExpr s => EvalSlice(s, scope),
                CallExpr c => EvalCall(c, scope),
                FilterExpr f => ApplyFilter(f, Eval(f.Operand, scope), scope),
                TestExpr t => EvalTest(t, scope),
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
        finally
        {
            _depth--;
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

    private List<object?> EvalList(ListExpr list, Scope scope)
    {
        var items = new List<object?>(list.Items.Count);
        foreach (var item in list.Items) items.Add(Eval(item, scope));
        return items;
    }

    private object? EvalGetItem(GetItemExpr g, Scope scope)
    {
        var target = Eval(g.Target, scope);
        // Indexing a string, its length and its methods go over its characters.
        if (target is string) Charge(Cost(target));
        return Members.Get(this, target, Eval(g.Key, scope));
    }

    private object? EvalSlice(SliceExpr s, Scope scope)
    {
        var target = Eval(s.Target, scope);
        Charge(Cost(target));
        return Members.Slice(target, EvalIndex(s.Start, scope), EvalIndex(s.Stop, scope), EvalIndex(s.Step, scope));
    }

    private bool EvalTest(TestExpr t, Scope scope)
    {
        var operand = Eval(t.Operand, scope);
        Charge(Cost(operand));
        return JinjaTests.Run(this, t.Name, operand, EvalArguments(t.Args, scope)) != t.Negated;
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

        var result = function.Invoke(EvalArguments(c.Args, scope));
        Charge(Cost(result));
        return result;
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
            Charge(Cost(text));
            return text;
        }

        var result = Operators.Arithmetic(this, b.Operator, left, right);
        Charge(Cost(result));
        return result;
    }

    private bool EvalCompare(CompareExpr c, Scope scope)
    {
        var left = Eval(c.First, scope);
        foreach (var (op, operand) in c.Rest)
        {
            var right = Eval(operand, scope);
            Charge(Cost(left) + Cost(right)); // equality and 'in' go over both sides
            if (!Operators.Compare(op, left, right)) return false;
            left = right;
        }

        return true;
    }
}
