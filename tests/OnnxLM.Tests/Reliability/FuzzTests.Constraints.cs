using System.Diagnostics;
using System.Text;
using System.Text.Json;
using CsCheck;
using OnnxLM.Constraints;

namespace OnnxLM.Tests;

/// <summary>
/// Hostile constraints: random nestings of repetition counts, alternations and classes, written as a regex, a GBNF
/// grammar and a JSON schema. Each must compile within its limit or be refused with a
/// <see cref="ConstraintTooLargeException"/>, quickly and without allocating more than the limit allows.
/// </summary>
public sealed partial class FuzzTests
{
    /// <summary>A repetition tree read from a script of picks, each pick deciding one node, so shrinking the script shrinks the tree.</summary>
    private sealed class NestedRepetition(int[] picks)
    {
        private static readonly string[] RegexAtoms = ["x", "ab", "[a-z]", "[^x]", "\\d", ".", "é", "😀"];
        private static readonly string[] GrammarAtoms = ["\"x\"", "\"ab\"", "[a-z]", "[^x]", "[0-9]", ".", "\"é\"", "\"😀\""];
        private int _next;

        private int Pick(int below) => picks.Length == 0 ? 0 : (int)((uint)picks[_next++ % picks.Length] % (uint)below);

        /// <summary>Counts lean to the large end (where products overflow) but keep small ones and open ranges.</summary>
        private (string Text, int Min, int? Max) Quantifier()
        {
            int Count() => Pick(4) switch { 0 => Pick(4), 1 => Pick(30), _ => 900 + Pick(101) };
            var min = Count();
            return Pick(6) switch
            {
                0 => ("*", 0, null),
                1 => ("+", 1, null),
                2 => ("?", 0, 1),
                3 => ($"{{{min}}}", min, min),
                4 => ($"{{{min},}}", min, null),
                _ => (Count() is var max && max >= min ? $"{{{min},{max}}}" : $"{{{max},{min}}}", Math.Min(min, max), Math.Max(min, max)),
            };
        }

        /// <summary>The same tree as a regular expression and as a GBNF expression.</summary>
        public (string Regex, string Grammar) Build(int depth = 0)
        {
            if (depth >= 4 || Pick(3) == 0)
            {
                var atom = Pick(RegexAtoms.Length);
                return (RegexAtoms[atom], GrammarAtoms[atom]);
            }

            var branches = Enumerable.Range(0, 1 + Pick(3)).Select(_ =>
            {
                var parts = Enumerable.Range(0, 1 + Pick(2)).Select(_ => Build(depth + 1)).ToList();
                return (string.Concat(parts.Select(p => p.Regex)), string.Join(' ', parts.Select(p => p.Grammar)));
            }).ToList();
            var (quantifier, _, _) = Quantifier();
            return ($"({string.Join('|', branches.Select(b => b.Item1))}){quantifier}", $"({string.Join(" | ", branches.Select(b => b.Item2))}){quantifier}");
        }

        /// <summary>Arrays nested with counts from the script, strings with lengths, and the regex as a pattern at the leaf.</summary>
        public string Schema(string pattern, int depth = 0)
        {
            if (depth >= 3 || Pick(3) == 0)
            {
                return Pick(2) == 0
                    ? JsonSerializer.Serialize(new { type = "string", pattern })
                    : $$"""{"type": "string", "minLength": {{Pick(3)}}, "maxLength": {{900 + Pick(101)}}}""";
            }

            var (_, min, max) = Quantifier();
            var bounds = max is { } m ? $", \"maxItems\": {m}" : "";
            return $$"""{"type": "array", "minItems": {{min}}{{bounds}}, "items": {{Schema(pattern, depth + 1)}}}""";
        }

        /// <summary>A limit drawn from the script: small ones make refusals common; none is large enough to be slow.</summary>
        public ConstraintLimits Limits() => new() { MaxAutomatonSize = 1 + Pick(300_000), MaxStates = 1 + Pick(2_000) };
    }

    /// <summary>
    /// Compiles with <paramref name="build"/>: it must succeed or refuse with <see cref="ConstraintTooLargeException"/>,
    /// within a second, allocating at most what the limit allows (a few hundred bytes per unit of size, with room for the
    /// JSON schema's text and the runtime), then step a few bytes, where only MaxStates may refuse.
    /// </summary>
    private static void CompilesWithinItsLimit(Func<ConstraintLimits, OutputConstraint> build, ConstraintLimits limits, string? walk)
    {
        var clock = Stopwatch.StartNew();
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        OutputConstraint constraint;
        try
        {
            constraint = build(limits);
        }
        catch (ConstraintTooLargeException e)
        {
            // The start state is built with the constraint, so a tiny MaxStates may already refuse it.
            Assert.Equal(e.LimitName == "MaxStates" ? limits.MaxStates : limits.MaxAutomatonSize, e.Limit);
            Assert.Contains($"ConstraintLimits.{e.LimitName} = ", e.Message);
            return;
        }
        finally
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed.TotalMilliseconds:F0} ms");
            var bytes = GC.GetAllocatedBytesForCurrentThread() - allocated;
            Assert.True(bytes < 64L * 1024 * 1024 + 400L * limits.MaxAutomatonSize, $"allocated {bytes >> 20} MiB");
        }

        if (walk is null) return;
        object? state = constraint.Start;
        try
        {
            foreach (var b in Encoding.UTF8.GetBytes(walk))
            {
                state = constraint.Step(state, b);
                if (state is null) break;
            }
        }
        catch (ConstraintTooLargeException e)
        {
            Assert.Equal(("MaxStates", limits.MaxStates), (e.LimitName, e.Limit));
        }
    }

    [Fact]
    public void NestedRepetitionsCompileWithinTheLimitOrAreRefused()
    {
        Fuzz(Gen.Int[0, int.MaxValue].Array[1, 40], picks =>
        {
            var tree = new NestedRepetition(picks);
            var (regex, grammar) = tree.Build();
            var limits = tree.Limits();
            var walk = string.Concat(Enumerable.Repeat("xab7é", 60));
            CompilesWithinItsLimit(l => OutputConstraint.Regex(regex, l), limits, walk);
            CompilesWithinItsLimit(l => OutputConstraint.Grammar("root ::= " + grammar, limits: l), limits, walk);
            using var schema = JsonDocument.Parse(tree.Schema(regex));
            CompilesWithinItsLimit(l => OutputConstraint.JsonSchema(schema.RootElement, l), limits, null);
        }, 300, picks =>
        {
            var tree = new NestedRepetition(picks);
            var (regex, grammar) = tree.Build();
            return $"{JsonSerializer.Serialize(regex)} / {JsonSerializer.Serialize(grammar)}";
        });
    }

    [Theory]
    [InlineData("((x{1000}){1000}){1000}")]
    [InlineData("(((a|b){1000}){1000})*")]
    [InlineData("([^x]{0,1000}){1000}")]
    [InlineData("((x{1000}|y){100}){100}")]
    public void NestedRepetitionsFoundByHandStayRefused(string pattern)
    {
        CompilesWithinItsLimit(l => OutputConstraint.Regex(pattern, l), ConstraintLimits.Default, null);
        Assert.Throws<ConstraintTooLargeException>(() => OutputConstraint.Regex(pattern));
    }
}
