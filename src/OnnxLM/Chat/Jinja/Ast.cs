namespace OnnxLM.Chat.Jinja;

// The syntax tree of a template. Every node keeps the position it started at, for runtime error messages.

internal abstract record Node(int Line, int Column);

internal abstract record Expr(int Line, int Column) : Node(Line, Column);

internal sealed record LiteralExpr(object? Value, int Line, int Column) : Expr(Line, Column);

internal sealed record NameExpr(string Name, int Line, int Column) : Expr(Line, Column);

internal sealed record ListExpr(IReadOnlyList<Expr> Items, bool IsTuple, int Line, int Column) : Expr(Line, Column);

internal sealed record DictExpr(IReadOnlyList<(Expr Key, Expr Value)> Pairs, int Line, int Column) : Expr(Line, Column);

/// <summary><c>a.b</c> (<see cref="Key"/> a <see cref="LiteralExpr"/>) and <c>a[b]</c>.</summary>
internal sealed record GetItemExpr(Expr Target, Expr Key, bool IsAttribute, int Line, int Column) : Expr(Line, Column);

internal sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Line, int Column) : Expr(Line, Column);

internal sealed record Arguments(IReadOnlyList<Expr> Positional, IReadOnlyList<(string Name, Expr Value)> Named)
{
    public static Arguments None { get; } = new([], []);
}

internal sealed record CallExpr(Expr Callee, Arguments Args, int Line, int Column) : Expr(Line, Column);

internal sealed record FilterExpr(Expr Operand, string Name, Arguments Args, int Line, int Column) : Expr(Line, Column);

internal sealed record TestExpr(Expr Operand, string Name, Arguments Args, bool Negated, int Line, int Column) : Expr(Line, Column);

internal sealed record UnaryExpr(string Operator, Expr Operand, int Line, int Column) : Expr(Line, Column);

internal sealed record BinaryExpr(string Operator, Expr Left, Expr Right, int Line, int Column) : Expr(Line, Column);

/// <summary>A comparison chain <c>a &lt; b &lt;= c</c>, true when every link holds.</summary>
internal sealed record CompareExpr(Expr First, IReadOnlyList<(string Operator, Expr Operand)> Rest, int Line, int Column) : Expr(Line, Column);

/// <summary><c>a if test else b</c>; without <c>else</c> the result is undefined when the test fails.</summary>
internal sealed record ConditionalExpr(Expr Test, Expr Then, Expr? Else, int Line, int Column) : Expr(Line, Column);

internal abstract record Stmt(int Line, int Column) : Node(Line, Column);

internal sealed record TextStmt(string Text, int Line, int Column) : Stmt(Line, Column);

internal sealed record OutputStmt(Expr Value, int Line, int Column) : Stmt(Line, Column);

internal sealed record IfStmt(IReadOnlyList<(Expr Test, IReadOnlyList<Stmt> Body)> Branches, IReadOnlyList<Stmt> Else, int Line, int Column)
    : Stmt(Line, Column);

internal sealed record ForStmt(IReadOnlyList<string> Targets, Expr Iterable, Expr? Filter, IReadOnlyList<Stmt> Body, IReadOnlyList<Stmt> Else,
    int Line, int Column) : Stmt(Line, Column);

/// <summary><c>{% set x = … %}</c>, <c>{% set a, b = … %}</c>, <c>{% set ns.attr = … %}</c> (<see cref="Attribute"/> set).</summary>
internal sealed record SetStmt(IReadOnlyList<string> Targets, string? Attribute, Expr Value, int Line, int Column) : Stmt(Line, Column);

/// <summary><c>{% set x %}…{% endset %}</c>, optionally through filters.</summary>
internal sealed record SetBlockStmt(string Target, IReadOnlyList<Stmt> Body, IReadOnlyList<FilterExpr> Filters, int Line, int Column) : Stmt(Line, Column);

internal sealed record MacroStmt(string Name, IReadOnlyList<(string Name, Expr? Default)> Parameters, IReadOnlyList<Stmt> Body, int Line, int Column)
    : Stmt(Line, Column);

/// <summary><c>{% call(params) macro(args) %}…{% endcall %}</c>: the body becomes <c>caller</c> inside the macro.</summary>
internal sealed record CallBlockStmt(CallExpr Call, IReadOnlyList<(string Name, Expr? Default)> CallerParameters, IReadOnlyList<Stmt> Body,
    int Line, int Column) : Stmt(Line, Column);

/// <summary><c>{% filter f %}…{% endfilter %}</c>: the rendered body goes through the filters (operand unused).</summary>
internal sealed record FilterBlockStmt(IReadOnlyList<FilterExpr> Filters, IReadOnlyList<Stmt> Body, int Line, int Column) : Stmt(Line, Column);

internal sealed record BreakStmt(int Line, int Column) : Stmt(Line, Column);

internal sealed record ContinueStmt(int Line, int Column) : Stmt(Line, Column);
