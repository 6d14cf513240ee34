namespace OnnxLM.Explain;

/// <summary>
/// The next-token distribution at one temperature: the most likely tokens, the entropy (bits), the mass the shown
/// tokens hold, and how many tokens top-p and min-p sampling would keep. Temperature 0 is the argmax, probability 1.
/// </summary>
public sealed record TemperatureView(float Temperature, IReadOnlyList<TokenProbability> Top, double EntropyBits, double TopMass, int TopPKeeps, int MinPKeeps);
