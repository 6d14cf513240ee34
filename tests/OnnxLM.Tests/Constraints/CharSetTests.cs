using System.Text;
using OnnxLM.Constraints;

namespace OnnxLM.Tests;

/// <summary>A character set's UTF-8 byte-range sequences match exactly the encodings of its members, checked over every code point.</summary>
public sealed class CharSetTests
{
    public static TheoryData<string, int[]> Sets => new()
    {
        { "all", [0, CharSet.MaxCodePoint] },
        { "ascii letters", ['A', 'Z', 'a', 'z'] },
        { "across every length", [0x70, 0x10010] },
        { "odd edges", [0x7FF, 0x801, 0xD7FE, 0xE001, 0xFFFE, 0x10001, 0x10FFFE, 0x10FFFF] },
        { "one astral", [0x1F600, 0x1F600] },
        { "latin-1 and greek", [0xC0, 0xFF, 0x391, 0x3C9] },
    };

    [Theory]
    [MemberData(nameof(Sets))]
    public void SequencesMatchExactlyTheEncodingsOfTheMembers(string name, int[] bounds)
    {
        var set = CharSet.Union(Enumerable.Range(0, bounds.Length / 2).Select(i => (bounds[2 * i], bounds[2 * i + 1])));
        var sequences = set.Utf8Sequences();
        Span<byte> buffer = stackalloc byte[4];
        for (var cp = 0; cp <= CharSet.MaxCodePoint; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF) continue;
            var length = new Rune(cp).EncodeToUtf8(buffer);
            var encoded = buffer[..length];
            var matches = 0;
            foreach (var sequence in sequences)
            {
                if (sequence.Length != length) continue;
                var all = true;
                for (var k = 0; k < length && all; k++) all = encoded[k] >= sequence[k].Lo && encoded[k] <= sequence[k].Hi;
                if (all) matches++;
            }

            var member = Enumerable.Range(0, bounds.Length / 2).Any(i => cp >= bounds[2 * i] && cp <= bounds[2 * i + 1]);
            Assert.True(matches == (member ? 1 : 0), $"{name}: U+{cp:X4} is matched by {matches} sequences, member: {member}");
        }
    }

    [Fact]
    public void SequencesNeverMatchBytesThatAreNotUtf8()
    {
        // Every byte string a sequence matches decodes strictly: no overlong forms, no surrogates, nothing past U+10FFFF.
        var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
        foreach (var sequence in CharSet.All.Utf8Sequences())
        {
            foreach (var bytes in Corners(sequence)) _ = strict.GetString(bytes);
        }
    }

    [Fact]
    public void NegationIsTheComplementWithoutSurrogates()
    {
        var set = CharSet.Union([('a', 'z'), (0x3B1, 0x3C9)]);
        var negated = set.Negate();
        foreach (var cp in new[] { 0, 'a' - 1, 'a', 'z', 'z' + 1, 0x3B0, 0x3B1, 0x3C9, 0x3CA, 0xD7FF, 0xE000, CharSet.MaxCodePoint })
        {
            Assert.NotEqual(set.Contains(cp), negated.Contains(cp));
        }

        Assert.False(negated.Contains(0xD800));
        Assert.Equal(set.Ranges, negated.Negate().Ranges);
    }

    /// <summary>The byte strings made of each range's lowest and highest byte at every position.</summary>
    private static IEnumerable<byte[]> Corners((byte Lo, byte Hi)[] sequence)
    {
        for (var mask = 0; mask < 1 << sequence.Length; mask++)
        {
            yield return [.. sequence.Select((r, k) => (mask >> k & 1) == 0 ? r.Lo : r.Hi)];
        }
    }
}
