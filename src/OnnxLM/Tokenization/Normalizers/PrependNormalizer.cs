namespace OnnxLM.Tokenization;

/// <summary>Puts a string (Llama's "▁") before every non-empty text.</summary>
internal sealed class PrependNormalizer(string prefix) : INormalizer
{
    public NormalizedText Normalize(NormalizedText text)
    {
        if (text.Length == 0)
        {
            return text;
        }

        var rewriter = text.Rewrite(text.Length + prefix.Length);
        rewriter.Emit(prefix, 0, 1);
        rewriter.Copy(0, text.Length);
        return rewriter.ToText();
    }
}
