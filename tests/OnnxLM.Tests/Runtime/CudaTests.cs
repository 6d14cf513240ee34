using System.Diagnostics;
using Xunit.Abstractions;

namespace OnnxLM.Tests;

/// <summary>
/// The CUDA path on a real GPU (skipped elsewhere; <c>build/gpu-check.sh</c> runs them): the cache stays in device
/// memory, decoding matches the CPU, forks and rewinds slice device memory instead of re-running the prefill, and a
/// prefill brings back one logits row. Step times are written to the test output for RESULTS.md.
/// </summary>
public sealed class CudaTests(ITestOutputHelper output)
{
    private static readonly int[] Prompt = [0, 1093, 260, 343, 392, 324, 683, 46];

    [CudaFact]
    public void CudaDecodingMatchesTheCpuAndKeepsTheCacheOnTheDevice()
    {
        using var cpu = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var cuda = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cuda });
        Assert.Equal(ExecutionProvider.Cuda, cuda.Info.ExecutionProvider);
        Assert.False(cuda.Runtime.Graph.UseHostCache);

        using var a = cpu.CreateSession();
        using var b = cuda.CreateSession();
        Assert.Null(b.HostCache);
        a.Append(Prompt);
        b.Append(Prompt);
        var clock = new Stopwatch();
        const int steps = 64;
        for (var step = 0; step < steps; step++)
        {
            Assert.True(KvCacheConformanceTests.MaxAbsDiff(a.NextTokenLogits, b.NextTokenLogits) <= 1e-3f, $"step {step}");
            var id = KvCacheConformanceTests.ArgMaxLowestId(a.NextTokenLogits);
            Assert.Equal(id, KvCacheConformanceTests.ArgMaxLowestId(b.NextTokenLogits));
            a.Append(id);
            clock.Start();
            b.Append(id);
            clock.Stop();
        }

        output.WriteLine($"kjv-tiny on CUDA: {clock.Elapsed.TotalMilliseconds / steps:F3} ms per decode step");
    }

    [CudaFact]
    public void CudaForkAndRewindSliceDeviceMemory()
    {
        using var cuda = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cuda });
        using var session = cuda.CreateSession();
        session.Append(Prompt);
        var atPrompt = session.NextTokenLogits.ToArray();
        session.Append(KvCacheConformanceTests.ArgMaxLowestId(atPrompt));
        var run = session.TokensRun;
        session.Rewind(Prompt.Length);
        Assert.Equal(run + 1, session.TokensRun);
        Assert.True(KvCacheConformanceTests.MaxAbsDiff(atPrompt, session.NextTokenLogits) <= 1e-4f);
        using var fork = session.Fork();
        Assert.Equal(0, fork.TokensRun);
        Assert.Equal(session.NextTokenLogits.ToArray(), fork.NextTokenLogits.ToArray());
        fork.Append(5);
        session.Append(5);
        Assert.True(KvCacheConformanceTests.MaxAbsDiff(session.NextTokenLogits, fork.NextTokenLogits) <= 1e-4f);
    }
}
