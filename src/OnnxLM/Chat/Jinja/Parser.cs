using System.Globalization;
using System.Runtime.CompilerServices;

namespace OnnxLM.Chat.Jinja;

/// <summary>
/// Recursive-descent parser from tokens to the syntax tree, with Jinja's operator precedence (lowest first):
/// conditional <c>x if c else y</c>, <c>or</c>, <c>and</c>, <c>not</c>, comparisons and <c>in</c>, <c>~</c>, <c>+ -</c>,
/// <c>* / // %</c>, <c>**</c>, unary <c>- +</c>, then postfix access, calls, filters (<c>|</c>) and tests (<c>is</c>).
/// </summary>
internal sealed class Parser
{
    private static readonly HashSet<string> CompareOperators = ["==", "!=", "<", ">", "<=", ">="];
    private static readonly HashSet<string> NotTestArguments = ["else", "or", "and", "if", "is", "in", "not"];

    private readonly List<Token> _tokens;
    private readonly int _maxDepth;
    private int _index;
    private int _depth;

    private Parser(List<Token> tokens, int maxDepth)
    {
        _tokens = tokens;
        _maxDepth = maxDepth;
    }

    /// <summary>Parses the tokens; nesting deeper than <paramref name="maxDepth"/> (<see cref="TemplateOptions.MaxDepth"/>) is refused.</summary>
    public static IReadOnlyList<Stmt> Parse(List<Token> tokens, int maxDepth)
    {
        return new Parser(tokens, maxDepth).ParseBody([]).Body;
    }

    private Token Current => _tokens[_index];

    private Token Next() => _tokens[_index++];

    private static TemplateSyntaxException Error(string message, Token at) => new(message, at.Line, at.Column);

    private Token Expect(TokenKind kind, string? value, string what)
    {
        var token = Current;
        if (token.Kind != kind || (value is not null && token.Value != value))
        {
            throw Error($"Expected {what}, found {token}.", token);
        }

        _index++;
        return token;
    }

    private bool Accept(TokenKind kind, string value)
    {
        if (!Current.Is(kind, value)) return false;
        _index++;
        return true;
    }

    private bool AcceptOperator(string value) => Accept(TokenKind.Operator, value);

    private bool AcceptName(string value) => Accept(TokenKind.Name, value);

    private string ExpectName(string what) => Expect(TokenKind.Name, null, what).Value;

    private void ExpectBlockEnd() => Expect(TokenKind.BlockEnd, null, "'%}'");

    /// <summary>
    /// One level deeper: a statement, an expression, or one more link of a chain (<c>a + b + c</c>, <c>x.a.b</c>, <c>x|f|g</c>),
    /// which the interpreter walks recursively though it is parsed in a loop. So the parser's stack and the tree's depth
    /// are both bounded here, with the stack probe as a backstop for threads with small stacks.
    /// </summary>
    private void Enter(Token at)
    {
        if (++_depth > _maxDepth)
        {
            throw new TemplateLimitExceededException($"The template nests deeper than {_maxDepth} levels (TemplateOptions.MaxDepth); blocks, operands and each link of a chain such as 'a + b + c' count.", at.Line, at.Column);
        }

        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            throw new TemplateLimitExceededException($"The template nests too deeply for this thread's stack at {_depth} levels; lower TemplateOptions.MaxDepth.", at.Line, at.Column);
        }
    }

    /// <summary>Statements up to one of the <paramref name="ends"/> tags; returns which one (its name consumed) or null at the end of input.</summary>
    private (List<Stmt> Body, string? End) ParseBody(string[] ends)
    {
        var body = new List<Stmt>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.End:
                    if (ends.Length > 0)
                    {
                        throw Error($"Unexpected end of template: expected {string.Join(" or ", ends.Select(e => $"'{{% {e} %}}'"))}.", token);
                    }

                    return (body, null);
                case TokenKind.Text:
                    _index++;
                    body.Add(new TextStmt(token.Value, token.Line, token.Column));
                    break;
                case TokenKind.VariableBegin:
                    _index++;
                    var value = ParseTuple();
                    Expect(TokenKind.VariableEnd, null, "'}}'");
                    body.Add(new OutputStmt(value, token.Line, token.Column));
                    break;
                case TokenKind.BlockBegin:
                    _index++;
                    var name = Current;
                    if (name.Kind == TokenKind.Name && Array.IndexOf(ends, name.Value) >= 0)
                    {
                        _index++;
                        return (body, name.Value);
                    }

                    ParseStatement(body);
                    break;
                default:
                    throw Error($"Unexpected {token}.", token);
            }
        }
    }

    private void ParseStatement(List<Stmt> body)
    {
        var token = Expect(TokenKind.Name, null, "a tag name after '{%'");
        Enter(token);
        switch (token.Value)
        {
            case "if":
                body.Add(ParseIf(token));
                break;
            case "for":
                body.Add(ParseFor(token));
                break;
            case "set":
                body.Add(ParseSet(token));
                break;
            case "macro":
                body.Add(ParseMacro(token));
                break;
            case "call":
                body.Add(ParseCallBlock(token));
                break;
            case "filter":
                var filters = ParseFilterChain();
                ExpectBlockEnd();
                body.Add(new FilterBlockStmt(filters, ParseBody(["endfilter"]).Body, token.Line, token.Column));
                ExpectBlockEnd();
                break;
            case "break" or "continue":
                ExpectBlockEnd();
                body.Add(token.Value == "break" ? new BreakStmt(token.Line, token.Column) : new ContinueStmt(token.Line, token.Column));
                break;
            case "do":
                // An expression evaluated for its effect; its value is dropped.
                var expr = ParseTuple();
                ExpectBlockEnd();
                body.Add(new SetStmt([], null, expr, token.Line, token.Column));
                break;
            case "generation":
                // transformers' marker for assistant-token masks: renders its body unchanged.
                ExpectBlockEnd();
                body.AddRange(ParseBody(["endgeneration"]).Body);
                ExpectBlockEnd();
                break;
            case "elif" or "else" or "endif" or "endfor" or "endset" or "endmacro" or "endcall" or "endfilter" or "endgeneration" or "endraw":
                throw Error($"Unexpected '{{% {token.Value} %}}' without an opening tag.", token);
            default:
                throw Error($"Unknown or unsupported tag '{token.Value}'.", token);
        }

        _depth--;
    }

    private IfStmt ParseIf(Token start)
    {
        var branches = new List<(Expr, IReadOnlyList<Stmt>)>();
        var test = ParseExpression();
        while (true)
        {
            ExpectBlockEnd();
            var (body, end) = ParseBody(["elif", "else", "endif"]);
            branches.Add((test, body));
            switch (end)
            {
                case "elif":
                    test = ParseExpression();
                    continue;
                case "else":
                    ExpectBlockEnd();
                    var elseBody = ParseBody(["endif"]).Body;
                    ExpectBlockEnd();
                    return new IfStmt(branches, elseBody, start.Line, start.Column);
                default:
                    ExpectBlockEnd();
                    return new IfStmt(branches, [], start.Line, start.Column);
            }
        }
    }

    private ForStmt ParseFor(Token start)
    {
        var targets = ParseTargets();
        Expect(TokenKind.Name, "in", "'in'");
        var iterable = ParseTuple(withCondition: false);
        Expr? filter = AcceptName("if") ? ParseExpression() : null;
        if (Current.IsName("recursive")) throw Error("Recursive for loops are not supported.", Current);
        ExpectBlockEnd();
        var (body, end) = ParseBody(["else", "endfor"]);
        IReadOnlyList<Stmt> elseBody = [];
        if (end == "else")
        {
            ExpectBlockEnd();
            elseBody = ParseBody(["endfor"]).Body;
        }

        ExpectBlockEnd();
        return new ForStmt(targets, iterable, filter, body, elseBody, start.Line, start.Column);
    }

    private List<string> ParseTargets()
    {
        var parenthesized = AcceptOperator("(");
        var targets = new List<string> { ExpectName("a variable name") };
        while (AcceptOperator(",")) targets.Add(ExpectName("a variable name"));
        if (parenthesized) Expect(TokenKind.Operator, ")", "')'");
        return targets;
    }

    private Stmt ParseSet(Token start)
    {
        var first = ExpectName("a variable name after 'set'");
        if (AcceptOperator("."))
        {
            var attribute = ExpectName("an attribute name");
            Expect(TokenKind.Operator, "=", "'='");
            var value = ParseTuple();
            ExpectBlockEnd();
            return new SetStmt([first], attribute, value, start.Line, start.Column);
        }

        var targets = new List<string> { first };
        while (AcceptOperator(",")) targets.Add(ExpectName("a variable name"));
        if (AcceptOperator("="))
        {
            var value = ParseTuple();
            ExpectBlockEnd();
            return new SetStmt(targets, null, value, start.Line, start.Column);
        }

        if (targets.Count > 1) throw Error("A block 'set' assigns one variable.", Current);
        var filters = Current.IsOperator("|") ? ParseFilterChain(leadingPipe: true) : [];
        ExpectBlockEnd();
        var body = ParseBody(["endset"]).Body;
        ExpectBlockEnd();
        return new SetBlockStmt(first, body, filters, start.Line, start.Column);
    }

    private MacroStmt ParseMacro(Token start)
    {
        var name = ExpectName("a macro name");
        var parameters = ParseParameters();
        ExpectBlockEnd();
        var body = ParseBody(["endmacro"]).Body;
        if (Current.Kind == TokenKind.Name) _index++; // {% endmacro name %}
        ExpectBlockEnd();
        return new MacroStmt(name, parameters, body, start.Line, start.Column);
    }

    private List<(string, Expr?)> ParseParameters()
    {
        Expect(TokenKind.Operator, "(", "'('");
        var parameters = new List<(string, Expr?)>();
        while (!AcceptOperator(")"))
        {
            if (parameters.Count > 0) Expect(TokenKind.Operator, ",", "',' or ')'");
            if (AcceptOperator(")")) break;
            var name = ExpectName("a parameter name");
            parameters.Add((name, AcceptOperator("=") ? ParseExpression() : null));
        }

        return parameters;
    }

    private CallBlockStmt ParseCallBlock(Token start)
    {
        var parameters = Current.IsOperator("(") ? ParseParameters() : [];
        var call = ParseExpression() as CallExpr ?? throw Error("'{% call %}' needs a macro call, as in '{% call m(x) %}'.", start);
        ExpectBlockEnd();
        var body = ParseBody(["endcall"]).Body;
        ExpectBlockEnd();
        return new CallBlockStmt(call, parameters, body, start.Line, start.Column);
    }

    private List<FilterExpr> ParseFilterChain(bool leadingPipe = false)
    {
        var filters = new List<FilterExpr>();
        var placeholder = new LiteralExpr(null, Current.Line, Current.Column);
        do
        {
            if (leadingPipe || filters.Count > 0) Expect(TokenKind.Operator, "|", "'|'");
            filters.Add(ParseFilter(placeholder));
        }
        while (Current.IsOperator("|"));

        return filters;
    }

    private FilterExpr ParseFilter(Expr operand)
    {
        var token = Expect(TokenKind.Name, null, "a filter name");
        var name = token.Value;
        while (AcceptOperator(".")) name += "." + ExpectName("a filter name");
        var args = Current.IsOperator("(") ? ParseArguments() : Arguments.None;
        return new FilterExpr(operand, name, args, token.Line, token.Column);
    }

    /// <summary>An expression, or a tuple when commas separate several (<c>{{ a, b }}</c>, <c>set x = 1, 2</c>).</summary>
    private Expr ParseTuple(bool withCondition = true)
    {
        var start = Current;
        var first = ParseExpression(withCondition);
        if (!Current.IsOperator(",")) return first;
        var items = new List<Expr> { first };
        while (AcceptOperator(","))
        {
            if (Current.Kind is TokenKind.BlockEnd or TokenKind.VariableEnd || Current.IsName("if")) break;
            items.Add(ParseExpression(withCondition));
        }

        return new ListExpr(items, IsTuple: true, start.Line, start.Column);
    }

    private Expr ParseExpression(bool withCondition = true)
    {
        var start = Current;
        Enter(start);
        var expr = ParseOr();
        var links = 0;
        if (withCondition)
        {
            while (Current.IsName("if"))
            {
                Enter(Next());
                links++;
                var test = ParseOr();
                var otherwise = AcceptName("else") ? ParseExpression() : null;
                expr = new ConditionalExpr(test, expr, otherwise, start.Line, start.Column);
            }
        }

        _depth -= links + 1;
        return expr;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        var links = 0;
        while (Current.IsName("or"))
        {
            var op = Next();
            Enter(op);
            links++;
            left = new BinaryExpr("or", left, ParseAnd(), op.Line, op.Column);
        }

        _depth -= links;
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        var links = 0;
        while (Current.IsName("and"))
        {
            var op = Next();
            Enter(op);
            links++;
            left = new BinaryExpr("and", left, ParseNot(), op.Line, op.Column);
        }

        _depth -= links;
        return left;
    }

    private Expr ParseNot()
    {
        if (Current.IsName("not"))
        {
            var op = Next();
            Enter(op);
            var operand = ParseNot();
            _depth--;
            return new UnaryExpr("not", operand, op.Line, op.Column);
        }

        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var start = Current;
        var first = ParseConcat();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            var token = Current;
            if (token.Kind == TokenKind.Operator && CompareOperators.Contains(token.Value))
            {
                _index++;
                rest.Add((token.Value, ParseConcat()));
            }
            else if (token.IsName("in"))
            {
                _index++;
                rest.Add(("in", ParseConcat()));
            }
            else if (token.IsName("not") && _tokens[_index + 1].IsName("in"))
            {
                _index += 2;
                rest.Add(("not in", ParseConcat()));
            }
            else
            {
                break;
            }
        }

        return rest.Count == 0 ? first : new CompareExpr(first, rest, start.Line, start.Column);
    }

    private Expr ParseConcat()
    {
        var left = ParseMath1();
        var links = 0;
        while (Current.IsOperator("~"))
        {
            var op = Next();
            Enter(op);
            links++;
            left = new BinaryExpr("~", left, ParseMath1(), op.Line, op.Column);
        }

        _depth -= links;
        return left;
    }

    private Expr ParseMath1()
    {
        var left = ParseMath2();
        var links = 0;
        while (Current.IsOperator("+") || Current.IsOperator("-"))
        {
            var op = Next();
            Enter(op);
            links++;
            left = new BinaryExpr(op.Value, left, ParseMath2(), op.Line, op.Column);
        }

        _depth -= links;
        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        var links = 0;
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            var op = Next();
            Enter(op);
            links++;
            left = new BinaryExpr(op.Value, left, ParsePow(), op.Line, op.Column);
        }

        _depth -= links;
        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(withFilter: true);
        var links = 0;
        while (Current.IsOperator("**"))
        {
            var op = Next();
            Enter(op);
            links++;
            left = new BinaryExpr("**", left, ParseUnary(withFilter: true), op.Line, op.Column);
        }

        _depth -= links;
        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        var token = Current;
        Expr node;
        if (token.IsOperator("-") || token.IsOperator("+"))
        {
            _index++;
            Enter(token);
            node = new UnaryExpr(token.Value, ParseUnary(withFilter: false), token.Line, token.Column);
            _depth--;
        }
        else
        {
            node = ParsePrimary();
        }

        node = ParsePostfix(node);
        return withFilter ? ParseFilterAndTests(node) : node;
    }

    private Expr ParsePrimary()
    {
        var token = Next();
        switch (token.Kind)
        {
            case TokenKind.Name:
                return token.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, token.Line, token.Column),
                    "false" or "False" => new LiteralExpr(false, token.Line, token.Column),
                    "none" or "None" => new LiteralExpr(null, token.Line, token.Column),
                    _ => new NameExpr(token.Value, token.Line, token.Column),
                };
            case TokenKind.String:
                var text = token.Value;
                while (Current.Kind == TokenKind.String) text += Next().Value; // adjacent literals join, as in Python
                return new LiteralExpr(text, token.Line, token.Column);
            case TokenKind.Integer:
                if (!long.TryParse(token.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var integer))
                {
                    throw Error($"The integer {token.Value} is too large.", token);
                }

                return new LiteralExpr(integer, token.Line, token.Column);
            case TokenKind.Float:
                return new LiteralExpr(double.Parse(token.Value, NumberStyles.Float, CultureInfo.InvariantCulture), token.Line, token.Column);
            case TokenKind.Operator when token.Value == "(":
                if (AcceptOperator(")")) return new ListExpr([], IsTuple: true, token.Line, token.Column);
                var inner = ParseTuple();
                Expect(TokenKind.Operator, ")", "')'");
                return inner;
            case TokenKind.Operator when token.Value == "[":
                var items = new List<Expr>();
                while (!AcceptOperator("]"))
                {
                    if (items.Count > 0)
                    {
                        Expect(TokenKind.Operator, ",", "',' or ']'");
                        if (AcceptOperator("]")) break;
                    }

                    items.Add(ParseExpression());
                }

                return new ListExpr(items, IsTuple: false, token.Line, token.Column);
            case TokenKind.Operator when token.Value == "{":
                var pairs = new List<(Expr, Expr)>();
                while (!AcceptOperator("}"))
                {
                    if (pairs.Count > 0)
                    {
                        Expect(TokenKind.Operator, ",", "',' or '}'");
                        if (AcceptOperator("}")) break;
                    }

                    var key = ParseExpression();
                    Expect(TokenKind.Operator, ":", "':'");
                    pairs.Add((key, ParseExpression()));
                }

                return new DictExpr(pairs, token.Line, token.Column);
            default:
                throw Error($"Unexpected {token} in an expression.", token);
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        var links = 0;
        while (true)
        {
            var token = Current;
            if (token.IsOperator(".") || token.IsOperator("[") || token.IsOperator("("))
            {
                Enter(token);
                links++;
            }

            if (token.IsOperator("."))
            {
                _index++;
                var member = Next();
                Expr key = member.Kind switch
                {
                    TokenKind.Name => new LiteralExpr(member.Value, member.Line, member.Column),
                    TokenKind.Integer => new LiteralExpr(long.TryParse(member.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                        ? index : throw Error($"The integer {member.Value} is too large.", member), member.Line, member.Column),
                    _ => throw Error($"Expected an attribute name after '.', found {member}.", member),
                };
                node = new GetItemExpr(node, key, IsAttribute: true, token.Line, token.Column);
            }
            else if (token.IsOperator("["))
            {
                _index++;
                node = ParseSubscript(node, token);
            }
            else if (token.IsOperator("("))
            {
                node = new CallExpr(node, ParseArguments(), token.Line, token.Column);
            }
            else
            {
                _depth -= links;
                return node;
            }
        }
    }

    private Expr ParseSubscript(Expr target, Token open)
    {
        Expr? start = null, stop = null, step = null;
        if (!Current.IsOperator(":")) start = ParseExpression();
        if (AcceptOperator("]"))
        {
            return new GetItemExpr(target, start ?? throw Error("Empty subscript '[]'.", open), IsAttribute: false, open.Line, open.Column);
        }

        Expect(TokenKind.Operator, ":", "':' or ']'");
        if (!Current.IsOperator(":") && !Current.IsOperator("]")) stop = ParseExpression();
        if (AcceptOperator(":") && !Current.IsOperator("]")) step = ParseExpression();
        Expect(TokenKind.Operator, "]", "']'");
        return new SliceExpr(target, start, stop, step, open.Line, open.Column);
    }

    private Arguments ParseArguments()
    {
        Expect(TokenKind.Operator, "(", "'('");
        var positional = new List<Expr>();
        var named = new List<(string, Expr)>();
        while (!AcceptOperator(")"))
        {
            if (positional.Count + named.Count > 0)
            {
                Expect(TokenKind.Operator, ",", "',' or ')'");
                if (AcceptOperator(")")) break;
            }

            if (Current.IsOperator("*") || Current.IsOperator("**")) throw Error("Argument unpacking with '*' is not supported.", Current);
            if (Current.Kind == TokenKind.Name && _tokens[_index + 1].IsOperator("="))
            {
                var name = Next().Value;
                _index++;
                named.Add((name, ParseExpression()));
            }
            else
            {
                if (named.Count > 0) throw Error("A positional argument follows a keyword argument.", Current);
                positional.Add(ParseExpression());
            }
        }

        return new Arguments(positional, named);
    }

    private Expr ParseFilterAndTests(Expr node)
    {
        var links = 0;
        while (true)
        {
            var token = Current;
            if (token.IsOperator("|") || token.IsName("is") || token.IsOperator("("))
            {
                Enter(token);
                links++;
            }

            if (token.IsOperator("|"))
            {
                _index++;
                node = ParseFilter(node);
            }
            else if (token.IsName("is"))
            {
                _index++;
                var negated = AcceptName("not");
                var test = Expect(TokenKind.Name, null, "a test name after 'is'");
                var args = Arguments.None;
                if (Current.IsOperator("("))
                {
                    args = ParseArguments();
                }
                else if (Current.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float
                         || (Current.Kind == TokenKind.Name && !NotTestArguments.Contains(Current.Value))
                         || Current.IsOperator("[") || Current.IsOperator("{"))
                {
                    args = new Arguments([ParsePostfix(ParsePrimary())], []);
                }

                node = new TestExpr(node, test.Value, args, negated, token.Line, token.Column);
            }
            else if (token.IsOperator("("))
            {
                node = new CallExpr(node, ParseArguments(), token.Line, token.Column);
            }
            else
            {
                _depth -= links;
                return node;
            }
        }
    }
}
