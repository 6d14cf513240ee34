using System.Globalization;
using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// SentencePiece's DecodeIds (sentencepiece_processor.cc) for a .model file: ▁ becomes a space, runs of byte pieces
/// are joined and read as UTF-8 (each byte that does not start a valid character becomes U+FFFD), the unknown
/// piece becomes unk_surface, control pieces vanish, and at the start of the text the space of the dummy prefix is
/// dropped (every leading ▁ while nothing has been written, when remove_extra_whitespaces is on). Pieces are told
/// apart by their strings, as SentencePiece itself does: its Decode maps each piece back with PieceToId, which looks
/// at the control, unknown and byte pieces first.
/// </summary>
internal sealed class SentencePieceDecoder : ITokenDecoder
{
    private const string SpaceSymbol = "\u2581";

    private readonly Dictionary<string, SentencePieceModelFile.PieceType> _reserved;
    private readonly string _unknownSurface;
    private readonly bool _stripsPrefix;
    private readonly bool _stripsAllLeading;
    private readonly SentencePieceNormalizer? _denormalizer;

    /// <param name="reserved">The control, unknown and byte pieces and their types.</param>
    /// <param name="unknownSurface">trainer_spec.unk_surface (" ⁇ " by default).</param>
    /// <param name="addDummyPrefix">normalizer_spec.add_dummy_prefix.</param>
    /// <param name="removeExtraWhitespaces">normalizer_spec.remove_extra_whitespaces.</param>
    /// <param name="denormalizer">The model's denormalizer_spec, applied to the decoded text, or null.</param>
    public SentencePieceDecoder(IReadOnlyDictionary<string, SentencePieceModelFile.PieceType> reserved, string unknownSurface,
        bool addDummyPrefix, bool removeExtraWhitespaces, SentencePieceNormalizer? denormalizer)
    {
        _reserved = new Dictionary<string, SentencePieceModelFile.PieceType>(reserved, StringComparer.Ordinal);
        _unknownSurface = unknownSurface;
        _stripsPrefix = addDummyPrefix || removeExtraWhitespaces;
        _stripsAllLeading = removeExtraWhitespaces;
        _denormalizer = denormalizer;
    }

    public void Decode(List<string> tokens, bool continuation)
    {
        var surfaces = new string[tokens.Count];
        var written = 0; // UTF-16 length of the text so far, to know whether it is still empty
        var atStart = !continuation;
        var prefixSeen = false;
        var byteStart = 0;
        for (var i = 0; i < tokens.Count; i++)
        {
            var piece = tokens[i];
            var type = _reserved.TryGetValue(piece, out var t) ? t : SentencePieceModelFile.PieceType.Normal;
            if (type == SentencePieceModelFile.PieceType.Byte)
            {
                continue;
            }

            written += DecodeBytes(tokens, byteStart, i, surfaces);
            if (prefixSeen || written > 0)
            {
                atStart = false;
            }

            byteStart = i + 1;
            string surface;
            prefixSeen = false;
            if (type == SentencePieceModelFile.PieceType.Control)
            {
                surface = string.Empty;
            }
            else if (type == SentencePieceModelFile.PieceType.Unknown)
            {
                surface = _unknownSurface;
            }
            else
            {
                var text = piece;
                if (atStart && _stripsPrefix && text.StartsWith(SpaceSymbol, StringComparison.Ordinal))
                {
                    text = text[SpaceSymbol.Length..];
                    // With remove_extra_whitespaces every leading ▁ goes, so the first one does not end the start.
                    prefixSeen = !_stripsAllLeading;
                }

                surface = text.Replace(SpaceSymbol, " ", StringComparison.Ordinal);
            }

            surfaces[i] = surface;
            written += surface.Length;
        }

        DecodeBytes(tokens, byteStart, tokens.Count, surfaces);
        tokens.Clear();
        if (_denormalizer is not null)
        {
            var text = string.Concat(surfaces);
            tokens.Add(_denormalizer.Normalize(new NormalizedText(text, null, null)).Text);
            return;
        }

        tokens.AddRange(surfaces);
    }

    /// <summary>
    /// Decodes the byte pieces [begin, end) as UTF-8 the way SentencePiece does: the last byte of each character
    /// carries it, and a byte that does not start a valid sequence becomes U+FFFD on its own. Returns the text length.
    /// </summary>
    private static int DecodeBytes(List<string> tokens, int begin, int end, string[] surfaces)
    {
        if (begin >= end)
        {
            return 0;
        }

        var bytes = new byte[end - begin];
        for (var i = begin; i < end; i++)
        {
            bytes[i - begin] = PieceToByte(tokens[i]);
        }

        var length = 0;
        var offset = 0;
        while (offset < bytes.Length)
        {
            var consumed = DecodeUtf8(bytes.AsSpan(offset), out var rune);
            for (var j = 0; j < consumed - 1; j++)
            {
                surfaces[begin + offset + j] = string.Empty;
            }

            var surface = rune.ToString();
            surfaces[begin + offset + consumed - 1] = surface;
            length += surface.Length;
            offset += consumed;
        }

        return length;
    }

    private static byte PieceToByte(string piece) =>
        byte.Parse(piece.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);

    /// <summary>util.cc's DecodeUTF8: a well-formed, shortest-form scalar of up to 4 bytes, else U+FFFD for one byte.</summary>
    private static int DecodeUtf8(ReadOnlySpan<byte> b, out Rune rune)
    {
        static bool Trail(byte x) => (x & 0xC0) == 0x80;
        static bool Valid(int c) => c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF);

        rune = Rune.ReplacementChar;
        if (b[0] < 0x80)
        {
            rune = new Rune(b[0]);
            return 1;
        }

        if (b.Length >= 2 && (b[0] & 0xE0) == 0xC0)
        {
            var c = ((b[0] & 0x1F) << 6) | (b[1] & 0x3F);
            if (Trail(b[1]) && c >= 0x80 && Valid(c))
            {
                rune = new Rune(c);
                return 2;
            }
        }
        else if (b.Length >= 3 && (b[0] & 0xF0) == 0xE0)
        {
            var c = ((b[0] & 0x0F) << 12) | ((b[1] & 0x3F) << 6) | (b[2] & 0x3F);
            if (Trail(b[1]) && Trail(b[2]) && c >= 0x800 && Valid(c))
            {
                rune = new Rune(c);
                return 3;
            }
        }
        else if (b.Length >= 4 && (b[0] & 0xF8) == 0xF0)
        {
            var c = ((b[0] & 0x07) << 18) | ((b[1] & 0x3F) << 12) | ((b[2] & 0x3F) << 6) | (b[3] & 0x3F);
            if (Trail(b[1]) && Trail(b[2]) && Trail(b[3]) && c >= 0x10000 && Valid(c))
            {
                rune = new Rune(c);
                return 4;
            }
        }

        return 1;
    }
}
