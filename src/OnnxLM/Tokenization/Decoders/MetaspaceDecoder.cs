namespace OnnxLM.Tokenization;

/// <summary>Metaspace: "▁" becomes a space, except in the first token of a text when a "▁" was prepended on encode.</summary>
internal sealed class MetaspaceDecoder(char replacement, PrependScheme scheme) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var drop = i == 0 && !continuation && scheme != PrependScheme.Never;
            tokens[i] = drop ? tokens[i].Replace(replacement.ToString(), "", StringComparison.Ordinal) : tokens[i].Replace(replacement, ' ');
        }
    }
}
