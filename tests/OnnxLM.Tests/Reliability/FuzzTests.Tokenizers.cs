using System.Diagnostics;
using System.Text.Json.Nodes;
using CsCheck;

namespace OnnxLM.Tests;

/// <summary>
/// Backtracking-prone regexes in a tokenizer.json's Split pre-tokenizer or Replace normalizer, run on the inputs
/// that make them explode: every encode ends within a deadline and throws nothing but the documented
/// <see cref="TokenizationLimitException"/> (and <see cref="ModelFormatException"/> at load, for a pattern .NET rejects).
/// </summary>
public sealed partial class FuzzTests
{
    private static readonly TimeSpan EncodeDeadline = TimeSpan.FromSeconds(10);

    private static readonly Gen<string> Atom = Gen.OneOf<string>("a", "b", "aa", "a|aa", "a|b", "[ab]", @"\s", "a?", ".");

    /// <summary>Nested quantifiers over alternations, the shapes of catastrophic backtracking: (x+)+, (x|xx)+, (x*)*, ((x|y)+)*.</summary>
    private static readonly Gen<string> Nested = Gen.Select(Atom, Atom, Gen.Int[0, 5], (x, y, shape) => shape switch
    {
        0 => $"({x}+)+",
        1 => $"({x}|{x}{x})+",
        2 => $"({x}*)*",
        3 => $"(({x}|{y})+)*",
        4 => $"({x}+|{y}+)+",
        _ => $"({x}{{1,3}})+",
    });

    // Lookaround tails force the backtracking engine (and its timeout); the others leave the pattern to the linear engine.
    private static readonly Gen<string> BacktrackingPronePattern = Gen.Select(Nested, Gen.Bool, Gen.Int[0, 9], (inner, twice, tail) =>
        (twice ? $"({inner})+" : inner) + tail switch
        {
            0 => "$",
            1 => "b",
            2 => "c",
            3 => "(?=c)",
            4 => @"(?!\S)",
            5 => "x$",
            _ => "",
        });

    /// <summary>A long run of what the pattern repeats, then a character that makes the match fail at the very end.</summary>
    private static readonly Gen<string> AdversarialText = Gen.Select(Gen.OneOf<string>("a", "ab", " ", "é", "a "), Gen.Int[10, 40], Gen.OneOf<string>("b", "c", "!", "😀", ""),
        (unit, count, last) => string.Concat(Enumerable.Repeat(unit, count)) + last);

    [Fact]
    public void BacktrackingPronePatternsEndQuicklyWithDocumentedErrorsOnly()
    {
        var gen = Gen.Select(BacktrackingPronePattern, Gen.Bool, AdversarialText);
        Fuzz(gen, input =>
        {
            var (pattern, inNormalizer, text) = input;
            var stage = new JsonObject
            {
                ["type"] = inNormalizer ? "Replace" : "Split",
                ["pattern"] = new JsonObject { ["Regex"] = pattern },
                [inNormalizer ? "content" : "behavior"] = inNormalizer ? "x" : "Isolated",
            };
            var root = new JsonObject
            {
                ["model"] = new JsonObject { ["type"] = "WordLevel", ["vocab"] = new JsonObject { ["a"] = 0, ["b"] = 1, ["[UNK]"] = 2 }, ["unk_token"] = "[UNK]" },
                [inNormalizer ? "normalizer" : "pre_tokenizer"] = stage,
            };
            if (LoadOrNull(root) is not { } tokenizer) return;

            var watch = Stopwatch.StartNew();
            var encode = Task.Factory.StartNew(() => tokenizer.EncodeToTokens(text, addSpecialTokens: false), TaskCreationOptions.LongRunning);
            try
            {
                Assert.True(encode.Wait(EncodeDeadline), $"the encode ran past {EncodeDeadline.TotalSeconds} s");
                Assert.All(encode.Result, t => Assert.InRange(t.Id, 0, 2));
            }
            catch (AggregateException e) when (e.InnerException is TokenizationLimitException limit)
            {
                Assert.Contains(pattern, limit.Message);
            }

            Assert.True(watch.Elapsed < EncodeDeadline, $"took {watch.Elapsed}");
        }, 100, t => $"{(t.Item2 ? "Replace" : "Split")} {t.Item1} on \"{t.Item3}\"");
    }
}
