using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// Normalizers that rewrite one code point at a time: Lowercase, StripAccents, Nmt, BERT's clean-text and Chinese
/// padding, and the ByteLevel normalizer. A mapping returns null to keep the character, an empty string to drop it.
/// </summary>
internal sealed class CharMapNormalizer(Func<Rune, string?> map) : INormalizer
{
    public NormalizedText Normalize(NormalizedText text)
    {
        var s = text.Text;
        NormalizedText.Rewriter? rewriter = null;
        var copiedUpTo = 0;
        for (var i = 0; i < s.Length;)
        {
            var r = Rune.TryGetRuneAt(s, i, out var rune) ? rune : Rune.ReplacementChar;
            var width = char.IsSurrogatePair(s, i) ? 2 : 1;
            var output = map(r);
            if (output is not null)
            {
                rewriter ??= text.Rewrite();
                rewriter.Copy(copiedUpTo, i);
                rewriter.Emit(output, i, i + width);
                copiedUpTo = i + width;
            }

            i += width;
        }

        if (rewriter is null)
        {
            return text;
        }

        rewriter.Copy(copiedUpTo, s.Length);
        return rewriter.ToText();
    }

    /// <summary>Rust's char::to_lowercase, which differs from .NET's simple mapping only for U+0130 (İ → i + combining dot).</summary>
    public static readonly CharMapNormalizer Lowercase = new(r =>
    {
        if (r.Value == 0x130)
        {
            return "i\u0307";
        }

        var lower = Rune.ToLowerInvariant(r);
        return lower == r ? null : lower.ToString();
    });

    /// <summary>Removes non-spacing marks (apply after NFD to strip accents).</summary>
    public static readonly CharMapNormalizer StripAccents = new(r => Rune.GetUnicodeCategory(r) == System.Globalization.UnicodeCategory.NonSpacingMark ? "" : null);

    /// <summary>Hugging Face's Nmt normalizer: control characters dropped, some separators turned into spaces.</summary>
    public static readonly CharMapNormalizer Nmt = new(r => r.Value switch
    {
        >= 0x1 and <= 0x8 or 0xB or >= 0xE and <= 0x1F or 0x7F or 0x8F or 0x9F => "",
        0x9 or 0xA or 0xC or 0xD or 0x1680 or >= 0x200B and <= 0x200F or 0x2028 or 0x2029 or 0x2581 or 0xFEFF or 0xFFFD => " ",
        _ => null,
    });

    /// <summary>BERT's clean-text step: NUL, U+FFFD and other control/format characters dropped, whitespace made a space.</summary>
    public static readonly CharMapNormalizer BertCleanText = new(r =>
    {
        if (r.Value is 0 or 0xFFFD)
        {
            return "";
        }

        if (r.Value is '\t' or '\n' or '\r' || Rune.IsWhiteSpace(r))
        {
            return r.Value == ' ' ? null : " ";
        }

        return Rune.GetUnicodeCategory(r) is System.Globalization.UnicodeCategory.Control or System.Globalization.UnicodeCategory.Format
            or System.Globalization.UnicodeCategory.Surrogate or System.Globalization.UnicodeCategory.PrivateUse or System.Globalization.UnicodeCategory.OtherNotAssigned
            ? ""
            : null;
    });

    /// <summary>BERT's Chinese-character step: spaces around every CJK ideograph.</summary>
    public static readonly CharMapNormalizer BertChineseChars = new(r => IsCjkIdeograph(r.Value) ? " " + r + " " : null);

    /// <summary>The ByteLevel normalizer: each UTF-8 byte becomes its GPT-2 byte character.</summary>
    public static readonly CharMapNormalizer ByteLevel = new(r =>
    {
        Span<byte> bytes = stackalloc byte[4];
        var n = r.EncodeToUtf8(bytes);
        return ByteLevelAlphabet.Encode(bytes[..n]);
    });

    private static bool IsCjkIdeograph(int c) =>
        c is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B920 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
