namespace OnnxLM;

/// <summary>A token the model considered at a position, with its log-probability (what OpenAI's <c>top_logprobs</c> returns).</summary>
/// <param name="Id">The token id.</param>
/// <param name="Text">The token's text.</param>
/// <param name="LogProb">Natural-log probability.</param>
public sealed record TokenAlternative(int Id, string Text, double LogProb);
