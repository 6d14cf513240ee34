namespace OnnxLM.Tokenization;

/// <summary>Replaces every match of a string or regex (leftmost, non-overlapping) with a content string.</summary>
internal sealed class ReplaceNormalizer(PatternMatcher pattern, string content) : INormalizer
{
    public NormalizedText Normalize(NormalizedText text)
    {
        NormalizedText.Rewriter? rewriter = null;
        var copied = 0;
        foreach (var (start, end) in pattern.Matches(text.Text))
        {
            if (end == start)
            {
                continue;
            }

            rewriter ??= text.Rewrite();
            rewriter.Copy(copied, start);
            rewriter.Emit(content, start, end);
            copied = end;
        }

        if (rewriter is null)
        {
            return text;
        }

        rewriter.Copy(copied, text.Length);
        return rewriter.ToText();
    }

    /// <summary>The replacement as a decoder step on each token string.</summary>
    public string Apply(string s)
    {
        var text = Normalize(new NormalizedText(s, null, null));
        return text.Text;
    }
}
