using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>Unicode normalization forms NFC / NFD / NFKC / NFKD (tokenizer.json types of the same names).</summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : INormalizer
{
    public NormalizedText Normalize(NormalizedText text) => Apply(text, form);

    public static NormalizedText Apply(NormalizedText text, NormalizationForm form)
    {
        var s = text.Text;
        if (s.IsNormalized(form))
        {
            return text;
        }

        var normalized = s.Normalize(form);
        if (!text.Tracked)
        {
            return new NormalizedText(normalized, null, null, text.Offset, text.Budget);
        }

        // Offsets: normalize runs that start at a character with no combining mark after it independently; every output
        // unit of a run points at the run's source. Runs are only used when they reproduce the whole-text result.
        var rewriter = text.Rewrite(normalized.Length);
        var start = 0;
        for (var i = 1; i <= s.Length; i++)
        {
            if (i < s.Length && (char.IsLowSurrogate(s[i]) || IsCombining(s, i)))
            {
                continue;
            }

            var run = s[start..i];
            var output = run.Normalize(form);
            if (output == run)
            {
                rewriter.Copy(start, i);
            }
            else
            {
                // As Hugging Face aligns them: output unit k comes from input unit k; composition drops the rest,
                // decomposition gives the extra units the last input unit's span.
                for (var k = 0; k < output.Length; k++)
                {
                    var from = start + Math.Min(k, run.Length - 1);
                    rewriter.Emit(output.AsSpan(k, 1), from, from + 1);
                }
            }

            start = i;
        }

        var result = rewriter.ToText();
        return result.Text == normalized ? result : new NormalizedText(normalized, Fill(normalized.Length, text.OriginalRange(0, s.Length).Start), Fill(normalized.Length, text.OriginalRange(0, s.Length).End), 0, text.Budget);
    }

    private static bool IsCombining(string s, int i)
    {
        var c = s[i];
        if (c < 0x300)
        {
            return false;
        }

        // Hangul vowel and final jamo combine with the syllable before them although they are not marks.
        if (c is >= '\u1160' and <= '\u11FF' or >= '\uD7B0' and <= '\uD7FF')
        {
            return true;
        }

        return Rune.TryGetRuneAt(s, i, out var r) && Rune.GetUnicodeCategory(r) is System.Globalization.UnicodeCategory.NonSpacingMark
            or System.Globalization.UnicodeCategory.SpacingCombiningMark or System.Globalization.UnicodeCategory.EnclosingMark;
    }

    private static int[] Fill(int length, int value)
    {
        var a = new int[length];
        Array.Fill(a, value);
        return a;
    }
}
