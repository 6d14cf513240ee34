namespace OnnxLM.Tokenization;

/// <summary>
/// ByteLevel post-processing with <c>trim_offsets</c> (also part of RobertaProcessing): a token's offsets leave out
/// the spaces its piece starts or ends with ("Ġthe" covers "the"), except the one space added before the first word
/// by <c>add_prefix_space</c>. Ids are unchanged.
/// </summary>
internal sealed class TrimOffsetsPostProcessor(bool addPrefixSpace) : IPostProcessor
{
    private static readonly char SpaceByte = ByteLevelAlphabet.ByteToChar((byte)' ');

    public void Process(List<EncodedToken> tokens, bool addSpecialTokens)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            var piece = t.Piece;
            var leading = 0;
            while (leading < piece.Length && IsSpace(piece[leading])) leading++;
            var trailing = 0;
            while (trailing < piece.Length && IsSpace(piece[piece.Length - 1 - trailing])) trailing++;
            if (leading == 0 && trailing == 0)
            {
                continue;
            }

            var start = t.Start;
            var end = t.End;
            if (leading > 0)
            {
                if ((i == 0 || start == 0) && addPrefixSpace && leading == 1)
                {
                    leading = 0;
                }

                start = Math.Min(start + leading, end);
            }

            if (trailing > 0 && end >= trailing)
            {
                end = Math.Max(end - trailing, start);
            }

            tokens[i] = t with { Start = start, Length = end - start };
        }
    }

    private static bool IsSpace(char c) => c == SpaceByte || char.IsWhiteSpace(c);
}
