using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>Removes whitespace at the start and/or end of the text.</summary>
internal sealed class StripNormalizer(bool left, bool right) : INormalizer
{
    public NormalizedText Normalize(NormalizedText text)
    {
        var s = text.Text;
        var start = 0;
        var end = s.Length;
        while (left && start < end && Rune.TryGetRuneAt(s, start, out var r) && Rune.IsWhiteSpace(r)) start += r.Utf16SequenceLength;
        while (right && end > start && Rune.TryGetRuneAt(s, end - 1, out var r) && Rune.IsWhiteSpace(r)) end--;
        return text.Slice(start, end - start);
    }
}
