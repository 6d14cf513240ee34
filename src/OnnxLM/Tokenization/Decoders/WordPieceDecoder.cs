namespace OnnxLM.Tokenization;

/// <summary>WordPiece: "##" continuations joined to the word before, other tokens after a space; optional clean-up of spaces before punctuation.</summary>
internal sealed class WordPieceDecoder(string prefix, bool cleanup) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            if (i != 0 || continuation)
            {
                t = t.StartsWith(prefix, StringComparison.Ordinal) ? t[prefix.Length..] : " " + t;
            }

            tokens[i] = cleanup ? CleanUp(t, decoderRule: true) : t;
        }
    }

    /// <summary>
    /// The clean-up of spaces before punctuation and in contractions that BERT's decoder and transformers'
    /// <c>clean_up_tokenization_spaces</c> apply (the decoder also turns " do not" into " don't").
    /// </summary>
    public static string CleanUp(string s, bool decoderRule)
    {
        s = s.Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal).Replace(" !", "!", StringComparison.Ordinal)
            .Replace(" ,", ",", StringComparison.Ordinal).Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
            .Replace(" 'm", "'m", StringComparison.Ordinal);
        if (decoderRule)
        {
            s = s.Replace(" do not", " don't", StringComparison.Ordinal);
        }

        return s.Replace(" 's", "'s", StringComparison.Ordinal).Replace(" 've", "'ve", StringComparison.Ordinal).Replace(" 're", "'re", StringComparison.Ordinal);
    }
}
