using System.Text.Json;
using OnnxLM.Constraints;

namespace OnnxLM.Tests;

/// <summary>GBNF grammars: languages a regex cannot express (nesting), checked by independent parsers, and grammar errors that name the rule and place.</summary>
public sealed class GrammarConstraintTests : IDisposable
{
    // JSON in GBNF, written for these tests: objects, arrays, strings with escapes, numbers, literals, bounded spaces.
    private const string JsonGrammar = """
        # any JSON value, objects first
        root   ::= object
        value  ::= object | array | string | number | "true" | "false" | "null"
        object ::= "{" ws ( member ( "," ws member )* )? "}"
        member ::= string ws ":" ws value ws
        array  ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
        string ::= "\"" ( [^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\""
        number ::= "-"? ( "0" | [1-9] [0-9]{0,6} ) ( "." [0-9]{1,6} )? ( [eE] [-+]? [0-9]{1,3} )?
        ws     ::= [ \t\n]{0,2}
        """;

    // Arithmetic with nested parentheses: not a regular language.
    private const string Arithmetic = """
        root   ::= expr
        expr   ::= term ( [-+] term )*
        term   ::= factor ( [*/] factor )*
        factor ::= [0-9]{1,3}
                 | "(" expr ")"
        """;

    private readonly LanguageModel _model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));

    public void Dispose() => _model.Dispose();

    [Fact]
    public async Task JsonGrammarOutputsParse()
    {
        var constraint = OutputConstraint.Grammar(JsonGrammar);
        var complete = 0;
        for (var seed = 0; seed < 10; seed++)
        {
            var result = await _model.GenerateAsync("And God said", new GenerationOptions { Constraint = constraint, Temperature = 1, Seed = seed, MaxNewTokens = 60 });
            var bytes = System.Text.Encoding.UTF8.GetBytes(result.Text);
            if (result.FinishReason == FinishReason.Stop)
            {
                complete++;
                using var doc = JsonDocument.Parse(result.Text);
                Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
            }
            else
            {
                Assert.True(BruteForce.IsJsonPrefix(bytes), $"seed {seed}: {result.Text} is not a JSON prefix");
            }
        }

        Assert.True(complete > 0, "no output completed in 60 tokens");
    }

    [Fact]
    public async Task NestedArithmeticIsBalancedAndWellFormed()
    {
        var constraint = OutputConstraint.Grammar(Arithmetic);
        var nested = 0;
        for (var seed = 0; seed < 16; seed++)
        {
            var result = await _model.GenerateAsync("Number", new GenerationOptions { Constraint = constraint, Temperature = 1.3f, Seed = seed, MaxNewTokens = 40 });
            if (result.FinishReason != FinishReason.Stop)
            {
                Assert.True(ArithmeticParser.IsPrefix(result.Text), $"seed {seed}: {result.Text}");
                continue;
            }

            Assert.True(ArithmeticParser.IsExpression(result.Text), $"seed {seed}: {result.Text} is not an expression");
            if (result.Text.Contains('(')) nested++;
        }

        Assert.True(nested > 0, "no sampled expression used parentheses");
    }

    [Fact]
    public async Task GreedyEqualsTheEquivalentRegex()
    {
        var grammar = await _model.GenerateAsync("And God said", new GenerationOptions { Constraint = OutputConstraint.Grammar("root ::= [A-Z] [a-z]+ \" \" [0-9]+ \":\" [0-9]+"), MaxNewTokens = 20 });
        var regex = await _model.GenerateAsync("And God said", new GenerationOptions { Constraint = OutputConstraint.Regex("[A-Z][a-z]+ [0-9]+:[0-9]+"), MaxNewTokens = 20 });
        Assert.Equal(regex.TokenIds, grammar.TokenIds);
    }

    [Fact]
    public void AGrammarIsSharedSafelyByConcurrentGenerations()
    {
        var constraint = OutputConstraint.Grammar(Arithmetic);
        var results = Enumerable.Range(0, 4).AsParallel().Select(seed => _model.GenerateAsync("Number", new GenerationOptions { Constraint = constraint, Temperature = 1, Seed = seed, MaxNewTokens = 30 }).GetAwaiter().GetResult()).ToList();
        foreach (var result in results)
        {
            Assert.True(result.FinishReason == FinishReason.Stop ? ArithmeticParser.IsExpression(result.Text) : ArithmeticParser.IsPrefix(result.Text), result.Text);
        }
    }

    [Theory]
    [InlineData("root ::= \"a\" missing", "'missing' is used but never defined")]
    [InlineData("root ::= root \"a\" | \"b\"", "'root' is left-recursive")]
    [InlineData("root ::= x\nx ::= \"(\" x \")\"", "'x' can never finish")]
    [InlineData("start ::= \"a\"", "no rule 'root'")]
    [InlineData("root ::= \"a\"\nroot ::= \"b\"", "defined twice")]
    [InlineData("root ::= [a-", "line 1, column")]
    [InlineData("root ::= \"abc", "unterminated string")]
    [InlineData("root ::= \"a\"\n\nother = \"b\"", "line 3, column 7: unexpected '='")]
    [InlineData("root ::= \"a\"{3,1}", "maximum below its minimum")]
    [InlineData("root ::= (\"a\" | \"b\"", "expected ')'")]
    [InlineData("root ::= \"\\q\"", "unknown escape")]
    public void BadGrammarsAreArgumentErrorsNamingTheProblem(string grammar, string named)
    {
        var ex = Assert.Throws<InvalidOptionException>(() => OutputConstraint.Grammar(grammar));
        Assert.Contains(named, ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void ContinuationLinesCommentsAndAlternativeLinesParse()
    {
        var constraint = OutputConstraint.Grammar("""
            root ::= greeting   # a comment
              " " name
            greeting ::= "hi"
              | "hello"
            name ::= [a-z]+
            """);
        Assert.True(Accepts(constraint, "hello bob"));
        Assert.True(Accepts(constraint, "hi x"));
        Assert.False(Accepts(constraint, "hey bob"));
    }

    /// <summary>Whether the constraint accepts the whole text, stepping its bytes.</summary>
    internal static bool Accepts(OutputConstraint constraint, string text)
    {
        object? state = constraint.Start;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(text))
        {
            state = constraint.Step(state, b);
            if (state is null) return false;
        }

        return constraint.IsComplete(state);
    }
}

/// <summary>The test's own recursive-descent reader for the arithmetic language (numbers of 1–3 digits, + - * /, parentheses).</summary>
internal static class ArithmeticParser
{
    public static bool IsExpression(string text)
    {
        var pos = 0;
        return Expr(text, ref pos) && pos == text.Length;
    }

    /// <summary>Whether some text completes <paramref name="text"/> to an expression: it parses, or ran out of input mid-way.</summary>
    public static bool IsPrefix(string text)
    {
        // Close what is open with a number and any missing operand: a prefix of an expression always completes that way.
        foreach (var tail in new[] { "", "0", "0)", "0))", "0)))" })
        {
            var depth = text.Count(c => c == '(') - text.Count(c => c == ')');
            var closing = new string(')', Math.Max(0, depth));
            if (IsExpression(text + tail) || IsExpression(text + tail + closing) || IsExpression(text + "0" + closing)) return true;
        }

        return text.Length == 0;
    }

    private static bool Expr(string s, ref int pos)
    {
        if (!Term(s, ref pos)) return false;
        while (pos < s.Length && s[pos] is '+' or '-')
        {
            pos++;
            if (!Term(s, ref pos)) return false;
        }

        return true;
    }

    private static bool Term(string s, ref int pos)
    {
        if (!Factor(s, ref pos)) return false;
        while (pos < s.Length && s[pos] is '*' or '/')
        {
            pos++;
            if (!Factor(s, ref pos)) return false;
        }

        return true;
    }

    private static bool Factor(string s, ref int pos)
    {
        if (pos < s.Length && s[pos] == '(')
        {
            pos++;
            if (!Expr(s, ref pos) || pos >= s.Length || s[pos] != ')') return false;
            pos++;
            return true;
        }

        var start = pos;
        while (pos < s.Length && char.IsAsciiDigit(s[pos]) && pos - start < 3) pos++;
        return pos > start;
    }
}
