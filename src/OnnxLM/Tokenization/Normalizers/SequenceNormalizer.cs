namespace OnnxLM.Tokenization;

/// <summary>Normalizers applied one after another.</summary>
internal sealed class SequenceNormalizer(IReadOnlyList<INormalizer> steps) : INormalizer
{
    public NormalizedText Normalize(NormalizedText text)
    {
        foreach (var step in steps)
        {
            text = step.Normalize(text);
        }

        return text;
    }
}
