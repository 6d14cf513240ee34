using System.Globalization;
using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>Gathers runs of "&lt;0xAB&gt;" byte tokens into text; bytes that are not valid UTF-8 become one U+FFFD each.</summary>
internal sealed class ByteFallbackDecoder : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        var output = new List<string>(tokens.Count);
        var bytes = new List<byte>();
        void Flush()
        {
            if (bytes.Count == 0)
            {
                return;
            }

            try
            {
                output.Add(new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes.ToArray()));
            }
            catch (DecoderFallbackException)
            {
                for (var i = 0; i < bytes.Count; i++) output.Add("\uFFFD");
            }

            bytes.Clear();
        }

        foreach (var token in tokens)
        {
            if (TryParseByte(token, out var b))
            {
                bytes.Add(b);
                continue;
            }

            Flush();
            output.Add(token);
        }

        Flush();
        tokens.Clear();
        tokens.AddRange(output);
    }

    public static bool TryParseByte(string token, out byte b)
    {
        b = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>' &&
            byte.TryParse(token.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out b);
    }
}
