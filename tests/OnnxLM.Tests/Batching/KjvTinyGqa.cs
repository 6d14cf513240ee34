using OnnxLM.ModelBuilder;

namespace OnnxLM.Tests;

/// <summary>
/// A GroupQueryAttention build of kjv-tiny (its own weights read back from the committed graph, fp32, context 256), written
/// once per test run to a temporary folder, as <c>build/train-default-model/gqa.sh</c> writes it for the benchmarks.
/// </summary>
internal static class KjvTinyGqa
{
    private static readonly Lazy<string> FolderLazy = new(() =>
    {
        var folder = Path.Combine(Path.GetTempPath(), $"onnxlm-kjv-tiny-gqa-{Environment.ProcessId}-{Guid.NewGuid():N}");
        DecoderModelBuilder.Convert(TestPaths.RepoModel("kjv-tiny"), folder, new ModelBuilderOptions { Attention = AttentionOperator.GroupQuery, ContextLength = 256 });
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // best effort: a temporary folder
            }
        };
        return folder;
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The folder of the GroupQueryAttention build.</summary>
    public static string Folder => FolderLazy.Value;

    /// <summary>Loads the build on the CPU provider with batching up to <paramref name="maxBatchSize"/> rows.</summary>
    public static LanguageModel Load(int maxBatchSize = LanguageModelOptions.DefaultMaxBatchSize) =>
        LanguageModel.Load(Folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = maxBatchSize });
}
