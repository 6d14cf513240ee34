namespace OnnxLM.Tokenization;

/// <summary>Joins all tokens into one.</summary>
internal sealed class FuseDecoder : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        var joined = string.Concat(tokens);
        tokens.Clear();
        tokens.Add(joined);
    }
}
