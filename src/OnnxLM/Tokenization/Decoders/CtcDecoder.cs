namespace OnnxLM.Tokenization;

/// <summary>CTC: repeated tokens collapsed, the pad token removed, the word delimiter made a space.</summary>
internal sealed class CtcDecoder(string padToken, string wordDelimiter, bool cleanup) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        var output = new List<string>(tokens.Count);
        string? previous = null;
        foreach (var t in tokens)
        {
            if (t != previous)
            {
                var s = t == padToken ? "" : t.Replace(wordDelimiter, " ", StringComparison.Ordinal);
                if (cleanup) s = WordPieceDecoder.CleanUp(s, decoderRule: true).Replace(wordDelimiter, " ", StringComparison.Ordinal);
                if (s.Length > 0) output.Add(s);
            }

            previous = t;
        }

        tokens.Clear();
        tokens.AddRange(output);
    }
}
