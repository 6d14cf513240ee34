namespace OnnxLM.Tokenization;

/// <summary>The BPE decoder of end-of-word-suffix vocabularies (CLIP's "&lt;/w&gt;"): the suffix becomes a space, except at the end.</summary>
internal sealed class BpeSuffixDecoder(string suffix) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            tokens[i] = tokens[i].Replace(suffix, i == tokens.Count - 1 ? "" : " ", StringComparison.Ordinal);
        }
    }
}
