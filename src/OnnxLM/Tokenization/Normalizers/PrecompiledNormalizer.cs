using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// tokenizer.json's <c>Precompiled</c> normalizer: SentencePiece's compiled character map, a Darts-clone double-array
/// trie over UTF-8 bytes whose values point into a blob of NUL-terminated replacement strings. The layout is a
/// little-endian uint32 trie size in bytes, the trie's uint32 units, then the blob. <see cref="Normalize"/> follows
/// Hugging Face's spm_precompiled rule (per grapheme cluster, first trie match); <see cref="NormalizeLongestMatch"/>
/// and <see cref="MatchLongest"/> follow SentencePiece's own normalizer.cc (longest match at every position).
/// </summary>
internal sealed class PrecompiledNormalizer : INormalizer
{
    private readonly uint[] _units;
    private readonly byte[] _blob;

    /// <summary>Reads a compiled character map; an empty one is the identity.</summary>
    /// <param name="charsmap">The map's bytes (tokenizer.json's base64 decoded, or a .model file's field).</param>
    /// <param name="source">The file the map came from, for messages.</param>
    public PrecompiledNormalizer(byte[] charsmap, string source)
    {
        if (charsmap.Length == 0)
        {
            _units = [];
            _blob = [];
            return;
        }

        if (charsmap.Length < 4)
        {
            throw new ModelFormatException($"The precompiled character map in '{source}' is truncated: {charsmap.Length} bytes, not even a trie size.", source);
        }

        var trieSize = BinaryPrimitives.ReadUInt32LittleEndian(charsmap);
        if (trieSize > (uint)(charsmap.Length - 4))
        {
            throw new ModelFormatException($"The precompiled character map in '{source}' says its trie has {trieSize} bytes but only {charsmap.Length - 4} follow.", source);
        }

        // SentencePiece reads trie_size / 4 units and ignores a partial last one, and so does spm_precompiled.
        _units = new uint[trieSize / 4];
        for (var i = 0; i < _units.Length; i++)
        {
            _units[i] = BinaryPrimitives.ReadUInt32LittleEndian(charsmap.AsSpan(4 + (i * 4)));
        }

        _blob = charsmap.AsSpan(4 + (int)trieSize).ToArray();
        try
        {
            // spm_precompiled rejects a blob that is not UTF-8 as a whole; a strict decode finds the same files.
            _ = new UTF8Encoding(false, true).GetCharCount(_blob);
        }
        catch (DecoderFallbackException e)
        {
            throw new ModelFormatException($"The replacement strings of the precompiled character map in '{source}' are not valid UTF-8.", source, e);
        }

        if (_units.Length == 0)
        {
            throw new ModelFormatException($"The precompiled character map in '{source}' has an empty trie.", source);
        }
    }

    /// <summary>Whether the map rewrites nothing (it was empty).</summary>
    public bool IsEmpty => _units.Length == 0;

    /// <summary>Hugging Face's rule: clusters under 6 UTF-8 bytes are looked up whole, longer ones (or misses) per character.</summary>
    public NormalizedText Normalize(NormalizedText text)
    {
        if (IsEmpty || text.Length == 0)
        {
            return text;
        }

        var s = text.Text;
        var rewriter = text.Rewrite();
        var modified = false;
        Span<byte> buffer = stackalloc byte[64];
        var position = 0;
        while (position < s.Length)
        {
            var clusterLength = StringInfo.GetNextTextElementLength(s.AsSpan(position));
            var cluster = s.AsSpan(position, clusterLength);
            var byteCount = Encoding.UTF8.GetByteCount(cluster);
            if (byteCount < 6)
            {
                var written = Encoding.UTF8.GetBytes(cluster, buffer);
                if (FirstMatch(buffer[..written]) is int value)
                {
                    // The whole cluster becomes the replacement of its shortest matching prefix, as spm_precompiled
                    // does, even when that prefix does not cover the cluster.
                    rewriter.Emit(ReplacementAt(value), position, position + clusterLength);
                    modified = true;
                    position += clusterLength;
                    continue;
                }
            }

            var end = position + clusterLength;
            while (position < end)
            {
                var charLength = position + 1 < end && char.IsSurrogatePair(s[position], s[position + 1]) ? 2 : 1;
                var written = Encoding.UTF8.GetBytes(s.AsSpan(position, charLength), buffer);
                if (FirstMatch(buffer[..written]) is int value)
                {
                    rewriter.Emit(ReplacementAt(value), position, position + charLength);
                    modified = true;
                }
                else
                {
                    rewriter.Copy(position, position + charLength);
                }

                position += charLength;
            }
        }

        return modified ? rewriter.ToText() : text;
    }

    /// <summary>
    /// SentencePiece's own use of the map (normalizer.cc's NormalizePrefix without its whitespace rules): at every
    /// position the longest matching prefix is replaced, and a character without a rule is kept.
    /// </summary>
    public static string NormalizeLongestMatch(PrecompiledNormalizer map, string text)
    {
        if (map.IsEmpty || text.Length == 0)
        {
            return text;
        }

        var bytes = Encoding.UTF8.GetBytes(text);
        var output = new List<byte>(bytes.Length);
        var position = 0;
        while (position < bytes.Length)
        {
            var length = map.MatchLongest(bytes.AsSpan(position), out var replacement);
            if (length == 0)
            {
                length = Utf8CharLength(bytes, position);
                output.AddRange(bytes.AsSpan(position, length));
            }
            else
            {
                output.AddRange(replacement);
            }

            position += length;
        }

        return Encoding.UTF8.GetString([.. output]);
    }

    /// <summary>
    /// The longest prefix of <paramref name="key"/> with a rule, as Darts' commonPrefixSearch with an explicit
    /// length finds it (a NUL byte is a byte like any other); returns its length in bytes, 0 when none.
    /// </summary>
    public int MatchLongest(ReadOnlySpan<byte> key, out ReadOnlySpan<byte> replacement)
    {
        replacement = default;
        if (IsEmpty)
        {
            return 0;
        }

        var longest = 0;
        var longestValue = 0;
        uint nodePos = 0;
        var unit = _units[0];
        nodePos ^= Offset(unit);
        for (var i = 0; i < key.Length; i++)
        {
            nodePos ^= key[i];
            if (nodePos >= (uint)_units.Length)
            {
                break;
            }

            unit = _units[nodePos];
            if (Label(unit) != key[i])
            {
                break;
            }

            nodePos ^= Offset(unit);
            if (HasLeaf(unit) && nodePos < (uint)_units.Length)
            {
                longest = i + 1;
                longestValue = Value(_units[nodePos]);
            }
        }

        if (longest > 0)
        {
            replacement = ReplacementBytes(longestValue);
        }

        return longest;
    }

    /// <summary>
    /// spm_precompiled's transform: the value of the shortest matching prefix (the first result of its
    /// common_prefix_search, which stops at a NUL byte), or null.
    /// </summary>
    private int? FirstMatch(ReadOnlySpan<byte> key)
    {
        uint nodePos = 0;
        var unit = _units[0];
        nodePos ^= Offset(unit);
        foreach (var c in key)
        {
            if (c == 0)
            {
                return null;
            }

            nodePos ^= c;
            if (nodePos >= (uint)_units.Length)
            {
                return null;
            }

            unit = _units[nodePos];
            if (Label(unit) != c)
            {
                return null;
            }

            nodePos ^= Offset(unit);
            if (HasLeaf(unit) && nodePos < (uint)_units.Length)
            {
                return Value(_units[nodePos]);
            }
        }

        return null;
    }

    private ReadOnlySpan<byte> ReplacementBytes(int index)
    {
        if ((uint)index >= (uint)_blob.Length)
        {
            return default;
        }

        var rest = _blob.AsSpan(index);
        var nul = rest.IndexOf((byte)0);
        return nul < 0 ? rest : rest[..nul];
    }

    private string ReplacementAt(int index) => Encoding.UTF8.GetString(ReplacementBytes(index));

    /// <summary>Bytes of the UTF-8 character at <paramref name="position"/>, by its lead byte, as SentencePiece's OneCharLen.</summary>
    internal static int Utf8CharLength(ReadOnlySpan<byte> bytes, int position)
    {
        var lead = bytes[position];
        var length = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        return Math.Min(length, bytes.Length - position);
    }

    // Darts-clone's unit layout: bit 8 flags a leaf child, bit 31 marks a value unit, and the offset to the children
    // is stored in bits 10..31, shifted by 8 more when bit 9 is set.
    private static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;

    private static int Value(uint unit) => (int)(unit & ((1u << 31) - 1));

    private static uint Label(uint unit) => unit & ((1u << 31) | 0xFF);

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);
}
