namespace OnnxLM.Tokenization;

/// <summary>Post-processors applied one after another (Llama-3: ByteLevel offsets, then the BOS template).</summary>
internal sealed class SequencePostProcessor(IReadOnlyList<IPostProcessor> steps) : IPostProcessor
{
    public IReadOnlyList<IPostProcessor> Steps => steps;

    public void Process(List<EncodedToken> tokens, bool addSpecialTokens)
    {
        foreach (var step in steps) step.Process(tokens, addSpecialTokens);
    }
}
