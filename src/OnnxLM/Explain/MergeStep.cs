namespace OnnxLM.Explain;

/// <summary>One byte-pair merge: two adjacent pieces joined into <see cref="Result"/>; lower ranks were learned earlier and merge first.</summary>
public sealed record MergeStep(string Left, string Right, string Result, int Rank);
