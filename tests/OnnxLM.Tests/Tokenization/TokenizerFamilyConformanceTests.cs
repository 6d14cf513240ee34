namespace OnnxLM.Tests;

/// <summary>
/// Every tokenizer family against its reference implementation (Hugging Face tokenizers, C++ SentencePiece or
/// tiktoken, run by build/fixtures): ids with and without special tokens and the decodes, exact on every text.
/// </summary>
public sealed class TokenizerFamilyConformanceTests
{
    [SkippableTheory]
    [ClassData(typeof(TokenizerFamilyData))]
    public void EncodesAndDecodesExactlyAsTheReference(string family)
    {
        Skip.If(TokenizerFamilies.Locate(family, out var reason) is null, reason);

        var tokenizer = TokenizerFamilies.Load(family);
        var fixture = TokenizerFixture.Load(family);
        var mismatches = new List<string>();
        var (addBos, addEos) = TokenizerFamilies.TransformersSpecialTokenFlags(family);
        foreach (var c in fixture.Cases)
        {
            // tiktoken's reference "ids" are encode_ordinary (special-token text stays text); OnnxLM, as Hugging Face,
            // always maps special-token text to its id, which the reference's encode(text, "all") gives.
            var tiktoken = family.StartsWith("tiktoken", StringComparison.Ordinal);
            Check("ids", tiktoken ? c.IdsWithSpecial! : c.Ids, tokenizer.Encode(c.Text, addSpecialTokens: false));
            if (c.IdsWithSpecial is { } withSpecial)
            {
                // transformers rebuilds the BOS/EOS template from tokenizer_config.json's add_bos_token/add_eos_token
                // (Llama-style classes, and files without a post-processor); the Rust library reads tokenizer.json alone.
                int[] expected = addBos is null && addEos is null ? withSpecial
                    : [.. addBos == true ? [tokenizer.BosTokenId!.Value] : Array.Empty<int>(), .. c.Ids, .. addEos == true ? [tokenizer.EosTokenIds[0]] : Array.Empty<int>()];
                Check("ids with special tokens", expected, tokenizer.Encode(c.Text));
                if (c.DecodedWithSpecial is { } d) Check("decode with special tokens", d, tokenizer.Decode(withSpecial, false, cleanUpTokenizationSpaces: false));
                if (c.DecodedSkip is { } skip) Check("decode skipping special tokens", skip, tokenizer.Decode(withSpecial, true, cleanUpTokenizationSpaces: false));
            }

            Check("decode", c.Decoded, tokenizer.Decode(c.Ids, false, cleanUpTokenizationSpaces: false));

            void Check<T>(string what, T expected, T actual)
            {
                var equal = expected is int[] e && actual is int[] a ? e.SequenceEqual(a) : Equals(expected, actual);
                if (!equal)
                {
                    mismatches.Add($"{what} of {Show(c.Text)}: expected {Show(expected)}, got {Show(actual)}");
                }
            }
        }

        Assert.True(mismatches.Count == 0, $"{family} ({fixture.Source}), {mismatches.Count} mismatches:\n" + string.Join("\n", mismatches.Take(40)));
    }

    [SkippableTheory]
    [ClassData(typeof(TokenizerFamilyWithOffsetsData))]
    public void OffsetsPointAtTheTextEachTokenCameFrom(string family)
    {
        Skip.If(TokenizerFamilies.Locate(family, out var reason) is null, reason);

        var tokenizer = TokenizerFamilies.Load(family);
        var (addBos, addEos) = TokenizerFamilies.TransformersSpecialTokenFlags(family);
        var mismatches = new List<string>();
        foreach (var c in TokenizerFixture.Load(family).Cases.Where(c => c.Offsets is not null))
        {
            // Where transformers' BOS/EOS flags replace tokenizer.json's template, compare the text's own tokens only.
            var overridden = addBos is not null || addEos is not null;
            var expectedOffsets = c.Offsets!;
            if (overridden)
            {
                var start = Enumerable.Range(0, c.IdsWithSpecial!.Length - c.Ids.Length + 1).First(p => c.IdsWithSpecial.AsSpan(p, c.Ids.Length).SequenceEqual(c.Ids));
                expectedOffsets = expectedOffsets[start..(start + c.Ids.Length)];
            }

            var tokens = tokenizer.EncodeToTokens(c.Text, addSpecialTokens: !overridden);
            var actual = tokens.Select(t => new[] { t.Start, t.End }).ToArray();
            if (!actual.SelectMany(x => x).SequenceEqual(expectedOffsets.SelectMany(x => x)))
            {
                mismatches.Add($"{Show(c.Text)}: expected {Show(expectedOffsets.Select(o => $"{o[0]}-{o[1]}"))}, got {Show(actual.Select(o => $"{o[0]}-{o[1]}"))}");
            }
        }

        var known = KnownOffsetDifferences.GetValueOrDefault(family);
        Assert.True(mismatches.Count <= known, $"{family}, {mismatches.Count} mismatches (known: {known}):\n" + string.Join("\n", mismatches.Take(20)));
    }

    /// <summary>
    /// Texts whose offsets still differ (ids are exact): the models report where each token ends, not where it starts,
    /// so a character dropped without an unknown token (tiny-phi3's 256-character vocabulary) joins the next token's
    /// span, and a Unigram piece after a fused unknown run (t5, emoji) starts at the run.
    /// </summary>
    private static readonly Dictionary<string, int> KnownOffsetDifferences = new()
    {
        ["tiny-phi3-gqa-fp16"] = 27,
        ["hf-t5"] = 5,
    };

    private static string Show(object? value) => value switch
    {
        string s => System.Text.Json.JsonSerializer.Serialize(s.Length > 80 ? s[..80] + "…" : s),
        int[] ids => "[" + string.Join(",", ids.Take(40)) + (ids.Length > 40 ? ",…" : "") + "]",
        IEnumerable<string> parts => "[" + string.Join(" ", parts.Take(40)) + "]",
        _ => value?.ToString() ?? "null",
    };
}
