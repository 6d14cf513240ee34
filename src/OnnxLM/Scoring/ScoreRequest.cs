namespace OnnxLM;

/// <summary>One context/continuation pair for <see cref="LanguageModel.ScoreBatchAsync(IReadOnlyList{ScoreRequest}, ScoreOptions?, IProgress{double}?, CancellationToken)"/>.</summary>
/// <param name="Context">The text conditioned on.</param>
/// <param name="Continuation">The text scored.</param>
public sealed record ScoreRequest(string Context, string Continuation);
