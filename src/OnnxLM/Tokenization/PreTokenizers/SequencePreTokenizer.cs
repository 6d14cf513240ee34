namespace OnnxLM.Tokenization;

/// <summary>Pre-tokenizers applied one after another, each to the pieces the previous one made.</summary>
internal sealed class SequencePreTokenizer(IReadOnlyList<IPreTokenizer> steps) : IPreTokenizer
{
    public void PreTokenize(List<NormalizedText> pieces)
    {
        foreach (var step in steps)
        {
            step.PreTokenize(pieces);
        }
    }
}
