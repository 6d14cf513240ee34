using System.Diagnostics;
using CsCheck;
using OnnxLM.Chat;

namespace OnnxLM.Tests;

/// <summary>
/// Hostile chat-template shapes: long chains of random operators, deeply nested blocks, and macros that call
/// themselves several times per level. Each render must end quickly in a result or a <see cref="TemplateException"/>
/// (a bound of <see cref="TemplateOptions"/>); a stack overflow here would kill the test host, a hang would time out.
/// </summary>
public sealed partial class FuzzTests
{
    // One link of an expression chain; each is left-associative or postfix, so the parser loops where the tree nests.
    private static readonly string[] ChainLinks =
    [
        " + 1", " - 1", " * 1", " // 1", " ** 1", " ~ 'a'", " or x", " and x", " == 1", " in [1]", "|upper", "|length", "|string",
        " is defined", ".x", "[0]", "['k']", "()", "[1:]", " if x", " if x else 1",
    ];

    private static readonly string[] ChainHeads = ["1", "'a'", "x", "f", "[1]", "{'k': 1}", "messages", "(1)", "not x", "-1"];

    /// <summary>A chain: a head and 1 to 50,000 links, one link repeated or a random mix.</summary>
    private static readonly Gen<string> OperatorChains =
        Gen.Select(Gen.Int[0, ChainHeads.Length - 1], Gen.Int[0, ChainLinks.Length - 1].Array[1, 8], Gen.Int[1, 50_000], (head, links, count) =>
        {
            var sb = new System.Text.StringBuilder("{{ ").Append(ChainHeads[head]);
            for (var i = 0; i < count; i++) sb.Append(ChainLinks[links[i % links.Length]]);
            return sb.Append(" }}").ToString();
        });

    private static readonly (string Open, string Close)[] Blocks =
    [
        ("{% if true %}", "{% endif %}"), ("{% if x %}{% else %}", "{% endif %}"), ("{% for i in [1] %}", "{% endfor %}"),
        ("{% filter upper %}", "{% endfilter %}"), ("{% set s %}", "{% endset %}{{ s }}"), ("{% macro m() %}", "{% endmacro %}{{ m() }}"),
        ("{% call m() %}", "{% endcall %}"), ("{{ [", "] }}"), ("{{ {'a': ", "} }}"), ("{{ (", ") }}"), ("{% generation %}", "{% endgeneration %}"),
    ];

    /// <summary>Blocks and literals nested 1 to 20,000 deep, a random mix of kinds.</summary>
    private static readonly Gen<string> NestedStatements =
        Gen.Select(Gen.Int[0, Blocks.Length - 1].Array[1, 6], Gen.Int[1, 20_000], (kinds, depth) =>
        {
            var sb = new System.Text.StringBuilder("{% macro m() %}{{ caller() if caller }}{% endmacro %}");
            for (var i = 0; i < depth; i++) sb.Append(Blocks[kinds[i % kinds.Length]].Open);
            sb.Append(Blocks[kinds[(depth - 1) % kinds.Length]].Open.StartsWith("{{", StringComparison.Ordinal) ? "1" : "x");
            for (var i = depth - 1; i >= 0; i--) sb.Append(Blocks[kinds[i % kinds.Length]].Close);
            return sb.ToString();
        });

    /// <summary>A macro calling itself <c>arity</c> times per level, <c>depth</c> levels deep: arity^depth calls.</summary>
    private static readonly Gen<string> MacroFanOut =
        Gen.Select(Gen.Int[1, 6], Gen.Int[1, 80], Gen.Bool, (arity, depth, viaOutput) =>
        {
            var call = viaOutput ? "{{ f(n - 1) }}" : "{% set _ = f(n - 1) %}";
            return "{% macro f(n) %}{% if n > 0 %}" + string.Concat(Enumerable.Repeat(call, arity)) + "{% endif %}{% endmacro %}{{ f(" + depth + ") }}";
        });

    /// <summary>Renders a hostile template: it may render or fail with a TemplateException, within the time a real template is far under.</summary>
    private static void RendersOrStopsAtABound(string source)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            _ = ChatTemplate.Create(source).Render([ChatMessage.User("hi")], addGenerationPrompt: true);
        }
        catch (TemplateException)
        {
        }

        // The work budget stops the costliest of these in well under a second; 5 s leaves room for a busy machine.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    private static string Shorten(string source) => source.Length <= 300 ? source : $"{source[..150]}…({source.Length} chars)…{source[^150..]}";

    [Fact]
    public void OperatorChainsOfAnyLengthStopAtABound() => Fuzz(OperatorChains, RendersOrStopsAtABound, 150, Shorten);

    [Fact]
    public void NestedBlocksOfAnyDepthStopAtABound() => Fuzz(NestedStatements, RendersOrStopsAtABound, 150, Shorten);

    [Fact]
    public void MacroFanOutStopsAtABound() => Fuzz(MacroFanOut, RendersOrStopsAtABound, 40, Shorten);
}
