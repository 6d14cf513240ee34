namespace OnnxLM.Sampling;

/// <summary>Named orders of <see cref="SamplerStage"/>s: the ecosystems differ, and the order changes results.</summary>
public static class SamplerOrders
{
    /// <summary>
    /// Hugging Face <c>generate</c>: penalties first, then temperature before the truncation warpers
    /// (top-k, top-p, min-p, typical, epsilon, eta); the stages Hugging Face lacks (DRY, top-nσ, XTC) sit where
    /// llama.cpp puts them relative to the others. The default.
    /// </summary>
    public static IReadOnlyList<SamplerStage> HuggingFace { get; } =
    [
        SamplerStage.Penalties, SamplerStage.Dry, SamplerStage.Temperature, SamplerStage.TopNSigma, SamplerStage.TopK,
        SamplerStage.TopP, SamplerStage.MinP, SamplerStage.TypicalP, SamplerStage.EpsilonCutoff, SamplerStage.EtaCutoff, SamplerStage.Xtc,
    ];

    /// <summary>
    /// llama.cpp's default chain: penalties → DRY → top-nσ → top-k → typical → top-p → min-p → XTC → temperature
    /// (epsilon/eta, which llama.cpp lacks, after min-p).
    /// </summary>
    public static IReadOnlyList<SamplerStage> LlamaCpp { get; } =
    [
        SamplerStage.Penalties, SamplerStage.Dry, SamplerStage.TopNSigma, SamplerStage.TopK, SamplerStage.TypicalP,
        SamplerStage.TopP, SamplerStage.MinP, SamplerStage.EpsilonCutoff, SamplerStage.EtaCutoff, SamplerStage.Xtc, SamplerStage.Temperature,
    ];
}
