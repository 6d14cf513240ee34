namespace OnnxLM.ModelBuilder.Conversion;

/// <summary>Command line for checkpoint conversion (placeholder until the builder lands).</summary>
internal static class ConvertCommand
{
    public static int Run(string[] args) => throw new NotImplementedException("convert");
}
