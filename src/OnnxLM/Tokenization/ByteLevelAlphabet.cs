namespace OnnxLM;

/// <summary>
/// GPT-2's reversible byte ↔ character table used by byte-level BPE vocabularies: printable bytes map to
/// themselves and the rest (control characters, space, 0x7F–0xA0, 0xAD) to U+0100 upward, so every byte
/// sequence is a string of visible characters ("Ġ" is the space byte 0x20).
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToCharTable = BuildTable();
    private static readonly Dictionary<char, byte> CharToByteTable = BuildReverse();

    public static char ByteToChar(byte b) => ByteToCharTable[b];

    /// <summary>Appends the bytes a byte-level piece stands for; false (and nothing appended) when a character is not in the table.</summary>
    public static bool TryAppendBytes(string piece, List<byte> into)
    {
        var start = into.Count;
        foreach (var c in piece)
        {
            if (!CharToByteTable.TryGetValue(c, out var b))
            {
                into.RemoveRange(start, into.Count - start);
                return false;
            }

            into.Add(b);
        }

        return true;
    }

    /// <summary>Maps UTF-8 bytes to their byte-level characters.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        return string.Create(bytes.Length, bytes.ToArray(), static (span, data) =>
        {
            for (var i = 0; i < data.Length; i++)
            {
                span[i] = ByteToCharTable[data[i]];
            }
        });
    }

    private static char[] BuildTable()
    {
        var table = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)next++;
        }

        return table;
    }

    private static Dictionary<char, byte> BuildReverse()
    {
        var reverse = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++)
        {
            reverse[ByteToCharTable[b]] = (byte)b;
        }

        return reverse;
    }
}
