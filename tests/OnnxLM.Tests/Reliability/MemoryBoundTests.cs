using System.Diagnostics;

namespace OnnxLM.Tests;

/// <summary>Tests that measure the process's memory, so they run alone (no other test allocating beside them).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryMeasuringCollection
{
    public const string Name = "memory-measuring";
}

/// <summary>
/// Regression tests for the memory defects of issue 17: a parked session holds only its cache (not its last run's
/// outputs), and perplexity's window is bounded and its size checked before anything is allocated.
/// </summary>
[Collection(MemoryMeasuringCollection.Name)]
public sealed class MemoryBoundTests
{
    [Fact]
    public void AParkedSessionHoldsOnlyItsCache()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        var prompt = Enumerable.Range(0, 200).Select(i => 300 + i % 900).ToArray();
        // Per session: the cache (200 tokens × KvCacheBytesPerToken, 0.8 MB here) and one row of logits. Before the fix the
        // bound outputs stayed too: the [1, 200, 4096] prefill logits (3.3 MB) and the previous past, 4.6 MB in all.
        var cache = 200.0 * model.Info.KvCacheBytesPerToken / 1048576;
        using (var warm = model.CreateSession()) warm.Append(prompt);
        var before = ResidentMegabytes();
        var parked = new List<GenerationSession>();
        for (var i = 0; i < 40; i++)
        {
            var session = model.CreateSession();
            session.Append(prompt);
            parked.Add(session);
        }

        var perSession = (ResidentMegabytes() - before) / parked.Count;
        foreach (var session in parked) session.Dispose();
        Assert.True(perSession < cache + 1.5, $"each parked session holds {perSession:F2} MB; its cache is {cache:F2} MB");
    }

    [Fact]
    public async Task PerplexityWindowsAreBoundedAndTheirSizeChecked()
    {
        Assert.Equal(2048, PerplexityOptions.DefaultWindowLength(131_072));
        Assert.Equal(256, PerplexityOptions.DefaultWindowLength(256));
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        // 2^20 tokens × 4,096 logits does not fit one array: refused before any allocation, naming the option.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Scorer.Rolling(model.Runtime, 0, [5, 6, 7], 1 << 20, 1 << 20, null, CancellationToken.None));
        Assert.Contains("WindowLength", e.Message);
        var result = await model.ScorePerplexityAsync("In the beginning God created the heaven and the earth.");
        Assert.True(result.TokenCount > 5);
    }

    private static double ResidentMegabytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64 / 1048576.0;
    }
}
