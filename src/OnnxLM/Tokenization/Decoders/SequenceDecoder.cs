namespace OnnxLM.Tokenization;

/// <summary>Decoders applied one after another.</summary>
internal sealed class SequenceDecoder(IReadOnlyList<ITokenDecoder> steps) : ITokenDecoder
{
    public IReadOnlyList<ITokenDecoder> Steps => steps;

    public void Decode(List<string> tokens, bool continuation)
    {
        foreach (var step in steps) step.Decode(tokens, continuation);
    }
}
