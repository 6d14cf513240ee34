namespace OnnxLM.Tokenization;

/// <summary>When the Metaspace step puts its replacement character before a piece.</summary>
internal enum PrependScheme
{
    Always,
    First,
    Never,
}

/// <summary>
/// SentencePiece's view of spaces: every space becomes "▁", one is put before the piece (always, only before the
/// first piece of the text, or never), and the piece is split before each "▁".
/// </summary>
internal sealed class MetaspacePreTokenizer(char replacement, PrependScheme scheme, bool split) : IPreTokenizer
{
    public void PreTokenize(List<NormalizedText> pieces)
    {
        var output = new List<NormalizedText>(pieces.Count);
        foreach (var piece in pieces)
        {
            var s = piece.Text;
            var prepend = scheme switch
            {
                PrependScheme.Always => !StartsWithSpaceOrReplacement(s),
                PrependScheme.First => !StartsWithSpaceOrReplacement(s) && piece.IsAtTextStart,
                _ => false,
            };
            var rewriter = piece.Rewrite(s.Length + 1);
            if (prepend)
            {
                // A prepended character shares the alignment of the character it precedes, as in Hugging Face.
                rewriter.Emit(replacement, 0, Math.Min(1, s.Length));
            }

            var copied = 0;
            for (var i = 0; i < s.Length; i++)
            {
                if (s[i] == ' ')
                {
                    rewriter.Copy(copied, i);
                    rewriter.Emit(replacement, i, i + 1);
                    copied = i + 1;
                }
            }

            rewriter.Copy(copied, s.Length);
            var replaced = rewriter.ToText();
            if (split)
            {
                var delimiters = new List<(int, int)>();
                for (var i = 0; i < replaced.Length; i++)
                {
                    if (replaced.Text[i] == replacement) delimiters.Add((i, i + 1));
                }

                Splitter.Split(replaced, delimiters, SplitBehavior.MergedWithNext, invert: false, output);
            }
            else
            {
                output.Add(replaced);
            }
        }

        pieces.Clear();
        pieces.AddRange(output);
    }

    // Hugging Face replaces the spaces first and then checks for a leading replacement character.
    private bool StartsWithSpaceOrReplacement(string s) => s.Length > 0 && (s[0] == ' ' || s[0] == replacement);
}
