namespace OnnxLM.Explain;

/// <summary>A pre-tokenized word and the merges that turned its characters (or bytes) into tokens, in order.</summary>
public sealed record WordMerges(string Word, IReadOnlyList<MergeStep> Merges);
