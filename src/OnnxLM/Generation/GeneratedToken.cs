namespace OnnxLM;

/// <summary>One generated token as it streams out.</summary>
/// <param name="Id">The token id.</param>
/// <param name="Text">
/// The text this token adds. Empty while a multi-byte character is incomplete (the rest arrives with a later
/// token) and for stop tokens; concatenating every <c>Text</c> gives the generated text exactly.
/// </param>
/// <param name="LogProb">Natural-log probability of the token under the model's raw distribution (log-softmax of the unprocessed logits).</param>
/// <param name="FinishReason">Set on the last token of the generation.</param>
public sealed record GeneratedToken(int Id, string Text, double LogProb, FinishReason? FinishReason = null)
{
    /// <summary>
    /// The most likely tokens at this step under the same raw distribution, best first (<see cref="GenerationOptions.TopLogProbs"/>
    /// of them; empty by default). Computed from the same log-softmax as <see cref="LogProb"/>: when the chosen token is
    /// among them its entry equals <see cref="LogProb"/> exactly.
    /// </summary>
    public IReadOnlyList<TokenAlternative> TopLogProbs { get; init; } = [];
}
