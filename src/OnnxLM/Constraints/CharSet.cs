namespace OnnxLM.Constraints;

/// <summary>
/// A set of Unicode scalar values (code points without the surrogates) as sorted, disjoint, inclusive ranges, and
/// its UTF-8 encodings as sequences of byte ranges, so character classes can be matched byte by byte.
/// </summary>
internal sealed class CharSet
{
    public const int MaxCodePoint = 0x10FFFF;
    private const int SurrogateLow = 0xD800;
    private const int SurrogateHigh = 0xDFFF;

    private readonly List<(int Lo, int Hi)> _ranges;

    private CharSet(List<(int Lo, int Hi)> ranges) => _ranges = ranges;

    public IReadOnlyList<(int Lo, int Hi)> Ranges => _ranges;

    public static CharSet Empty => new([]);

    public static CharSet All => Range(0, MaxCodePoint);

    public static CharSet Of(int codePoint) => Range(codePoint, codePoint);

    public static CharSet Range(int lo, int hi) => Union([(lo, hi)]);

    /// <summary>The union of ranges (in any order, overlapping or not), without surrogates.</summary>
    public static CharSet Union(IEnumerable<(int Lo, int Hi)> ranges)
    {
        var sorted = new List<(int Lo, int Hi)>();
        foreach (var (lo, hi) in ranges)
        {
            // Surrogates are not characters: UTF-8 cannot carry them.
            if (lo < SurrogateLow) sorted.Add((lo, Math.Min(hi, SurrogateLow - 1)));
            if (hi > SurrogateHigh) sorted.Add((Math.Max(lo, SurrogateHigh + 1), Math.Min(hi, MaxCodePoint)));
        }

        sorted.RemoveAll(r => r.Lo > r.Hi);
        sorted.Sort();
        var merged = new List<(int Lo, int Hi)>();
        foreach (var r in sorted)
        {
            if (merged.Count > 0 && r.Lo <= merged[^1].Hi + 1) merged[^1] = (merged[^1].Lo, Math.Max(merged[^1].Hi, r.Hi));
            else merged.Add(r);
        }

        return new CharSet(merged);
    }

    public CharSet Union(CharSet other) => Union(_ranges.Concat(other._ranges));

    /// <summary>Every scalar value not in this set.</summary>
    public CharSet Negate()
    {
        var gaps = new List<(int, int)>();
        var next = 0;
        foreach (var (lo, hi) in _ranges)
        {
            if (lo > next) gaps.Add((next, lo - 1));
            next = hi + 1;
        }

        if (next <= MaxCodePoint) gaps.Add((next, MaxCodePoint));
        return Union(gaps);
    }

    public bool Contains(int codePoint) => _ranges.Any(r => codePoint >= r.Lo && codePoint <= r.Hi);

    /// <summary>
    /// The UTF-8 encodings of the set: each sequence of byte ranges matches exactly the encodings of one block of code
    /// points, and the sequences together match the set's encodings and nothing else.
    /// </summary>
    public List<(byte Lo, byte Hi)[]> Utf8Sequences()
    {
        var sequences = new List<(byte, byte)[]>();
        foreach (var (lo, hi) in _ranges) Split(lo, hi, sequences);
        return sequences;
    }

    private static readonly int[] LengthLimits = [0x7F, 0x7FF, 0xFFFF, MaxCodePoint];

    private static void Split(int lo, int hi, List<(byte, byte)[]> sequences)
    {
        // A range that spans encodings of different lengths is cut at the boundaries first.
        for (var n = 0; n < LengthLimits.Length - 1; n++)
        {
            var limit = LengthLimits[n];
            if (lo <= limit && hi > limit)
            {
                Split(lo, limit, sequences);
                Split(limit + 1, hi, sequences);
                return;
            }
        }

        var length = hi <= 0x7F ? 1 : hi <= 0x7FF ? 2 : hi <= 0xFFFF ? 3 : 4;
        // Within one length, cut until every continuation byte position is either fixed or spans its full 0x80–0xBF.
        for (var i = 1; i < length; i++)
        {
            var mask = (1 << (6 * i)) - 1;
            if ((lo & ~mask) != (hi & ~mask))
            {
                if ((lo & mask) != 0)
                {
                    Split(lo, lo | mask, sequences);
                    Split((lo | mask) + 1, hi, sequences);
                    return;
                }

                if ((hi & mask) != mask)
                {
                    Split(lo, (hi & ~mask) - 1, sequences);
                    Split(hi & ~mask, hi, sequences);
                    return;
                }
            }
        }

        var a = Encode(lo);
        var b = Encode(hi);
        var sequence = new (byte, byte)[a.Length];
        for (var k = 0; k < a.Length; k++) sequence[k] = (a[k], b[k]);
        sequences.Add(sequence);
    }

    private static byte[] Encode(int codePoint) => System.Text.Encoding.UTF8.GetBytes(char.ConvertFromUtf32(codePoint));
}
