namespace OnnxLM.ModelBuilder.Tokenization;

/// <summary>Command line for the BPE trainer (placeholder until the trainer lands).</summary>
internal static class TrainBpeCommand
{
    public static int Run(string[] args) => throw new NotImplementedException("train-bpe");
}
