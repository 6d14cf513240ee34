namespace OnnxLM;

/// <summary>One finished beam-search hypothesis.</summary>
/// <param name="TokenIds">Generated token ids (a final stop token included when one ended the beam).</param>
/// <param name="Text">The generated text (stop tokens left out).</param>
/// <param name="LogProb">Sum of the generated tokens' log-probabilities under the model.</param>
/// <param name="Score">LogProb / generated_length^LengthPenalty: the value beams are ranked by.</param>
/// <param name="FinishReason">Whether a stop token ended it or the length limit did.</param>
public sealed record BeamResult(IReadOnlyList<int> TokenIds, string Text, double LogProb, double Score, FinishReason FinishReason);
