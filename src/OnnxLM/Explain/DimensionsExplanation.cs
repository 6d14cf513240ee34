namespace OnnxLM.Explain;

/// <summary>
/// Near-orthogonality at the model's width: cosines between random Gaussian directions and between token embeddings,
/// and how many directions with every pairwise |cosine| below <see cref="Epsilon"/> a greedy random search finds at
/// that width and in three dimensions, next to the Johnson–Lindenstrauss guarantee.
/// </summary>
/// <param name="Width">The model's hidden size (the dimension of the residual stream).</param>
/// <param name="RandomDirections">Cosines between pairs of independent Gaussian vectors of that width (mean 0, sd 1/√width).</param>
/// <param name="TokenEmbeddings">Cosines between random pairs of distinct token embeddings, histogram on the same range.</param>
/// <param name="Epsilon">The |cosine| bound of "nearly orthogonal".</param>
/// <param name="NearlyOrthogonalAtWidth">Directions the greedy search kept at the model's width.</param>
/// <param name="NearlyOrthogonalIn3D">Directions the same search kept in three dimensions.</param>
/// <param name="SearchLimit">The most directions the search keeps (a count that reaches it means "at least").</param>
/// <param name="JohnsonLindenstraussAtWidth">exp(width·(ε²/2 − ε³/3)/4): how many points the Johnson–Lindenstrauss lemma guarantees fit at that width.</param>
public sealed record DimensionsExplanation(int Width, CosineSummary RandomDirections, CosineSummary TokenEmbeddings, double Epsilon,
    int NearlyOrthogonalAtWidth, int NearlyOrthogonalIn3D, int SearchLimit, double JohnsonLindenstraussAtWidth);
