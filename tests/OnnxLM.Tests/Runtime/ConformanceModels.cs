namespace OnnxLM.Tests;

/// <summary>
/// The models every conformance test runs on: the repository's own kjv-tiny (always present, so a fresh clone
/// exercises the core) and the third-party models of ../shared/models (skipped when absent), each with a prompt of
/// valid ids and the tolerance its dtype allows.
/// </summary>
public static class ConformanceModels
{
    public sealed record Case(string Name, int[] PromptIds, float Tolerance, bool InRepository = false)
    {
        public string Path => InRepository ? TestPaths.RepoModel(Name) : TestPaths.SharedModel(Name);
    }

    public const string Repo = "kjv-tiny";

    public static readonly Case[] All =
    [
        // Built here: byte-level BPE, Llama with GQA 10:2, fp16-stored weights computed in fp32 (ids of "And the LORD said unto Moses,").
        new(Repo, [0, 1093, 260, 343, 392, 324, 683, 46], 1e-4f, InRepository: true),
        // GPT-2 (combined past_%d cache, int32 inputs): the model only knows ids < 1000.
        new("tiny-gpt2-fp32", [464, 886, 286, 262, 995, 318, 257, 640], 1e-4f),
        // Llama fp16 with external data.
        new("tiny-llama-fp16", [1, 450, 4996, 17354, 1701, 29916, 432, 10730], 1e-2f),
        // Phi-3 GroupQueryAttention fp16, no position_ids; vocab 256.
        new("tiny-phi3-gqa-fp16", [40, 69, 76, 76, 79, 12, 87, 79, 82, 76, 68], 1e-2f),
        // PyTorch-exported Llama fp32 (Optimum layout, GQA 4:2).
        new("torch-llama-fp32", [1, 455, 345, 339, 384, 507, 492, 269, 1948, 1966, 299, 316], 1e-4f),
    ];

    public static IEnumerable<object[]> Shared() => All.Where(c => !c.InRepository).Select(c => new object[] { c.Name });

    public static Case Get(string name) => All.Single(c => c.Name == name);

    public static LanguageModel Load(string name) =>
        LanguageModel.Load(Get(name).Path, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
}
