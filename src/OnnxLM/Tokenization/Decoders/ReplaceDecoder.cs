namespace OnnxLM.Tokenization;

/// <summary>Replaces a string or regex in every token (Llama's "▁" → " ").</summary>
internal sealed class ReplaceDecoder(ReplaceNormalizer replace) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        for (var i = 0; i < tokens.Count; i++) tokens[i] = replace.Apply(tokens[i]);
    }
}
