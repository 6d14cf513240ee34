namespace OnnxLM.Tests;

/// <summary>
/// The CPU decode step (issue 14, item 1): once its buffers have grown, a step allocates no managed memory and no new
/// cache buffers, the cache stays within twice what the sequence needs (once when GroupQueryAttention shares it), and
/// sharing the buffer gives the same logits as not sharing it.
/// </summary>
[Collection(MemoryMeasuringCollection.Name)]
public sealed class DecodeStepTests
{
    [Fact]
    public void SteadyDecodingAllocatesNothingOnTheRepositoryModel() => SteadyDecodingAllocatesNothing(ConformanceModels.Repo);

    [SharedModelTheory]
    [MemberData(nameof(ConformanceModels.Shared), MemberType = typeof(ConformanceModels))]
    public void SteadyDecodingAllocatesNothingOnSharedModels(string name) => SteadyDecodingAllocatesNothing(name);

    [Fact]
    public void ASessionSizedForItsAnswerAllocatesItsSharedCacheOnceAtThePrompt()
    {
        // A GroupQueryAttention build, whose one buffer is bound as past and present: within a factor of two of the session's
        // length the cache takes the whole length at once, so the first decode step after a long prompt copies nothing.
        using var model = LanguageModel.Load(KjvTinyGqa.Folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        int[] prompt = [.. Enumerable.Range(1, 100)];
        using var session = model.CreateSession(prompt.Length + 20);
        session.Append(prompt);
        var cache = session.HostCache!;
        Assert.True(cache.Shared);
        Assert.Equal(1, cache.Allocations);
        Assert.Equal((long)session.MaxLength * model.Info.KvCacheBytesPerToken, cache.Bytes);
        while (session.Length < session.MaxLength) session.Append(KvCacheConformanceTests.ArgMaxLowestId(session.NextTokenLogits));
        Assert.Equal(1, cache.Allocations);

        // A session with room to spare still grows by doubling: a 100-token prompt in a 256-position session holds 100.
        using var roomy = model.CreateSession();
        roomy.Append(prompt);
        Assert.Equal(100L * model.Info.KvCacheBytesPerToken, roomy.HostCache!.Bytes);
    }

    private static void SteadyDecodingAllocatesNothing(string name)
    {
        var prompt = ConformanceModels.Get(name).PromptIds;
        using var model = ConformanceModels.Load(name);
        using var session = model.CreateSession(prompt.Length + 120);
        using var cancellation = new CancellationTokenSource();
        session.Append(prompt);
        // Grow the buffers to the session's length once, then go back to the prompt: from here on the step is steady.
        while (session.Length < session.MaxLength) session.Append(KvCacheConformanceTests.ArgMaxLowestId(session.NextTokenLogits));
        session.Rewind(prompt.Length);
        // Once with the token source too: its first registration allocates the source's callback list.
        session.Append([KvCacheConformanceTests.ArgMaxLowestId(session.NextTokenLogits)], cancellation.Token);
        session.Rewind(prompt.Length);
        var cache = session.HostCache!;
        var allocations = cache.Allocations;
        Span<int> next = stackalloc int[1];

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var step = 0; step < 100; step++)
        {
            next[0] = KvCacheConformanceTests.ArgMaxLowestId(session.NextTokenLogits);
            // Every other step with a cancellable token: registering the cancellation must not allocate either.
            session.Append(next, step % 2 == 0 ? CancellationToken.None : cancellation.Token);
        }

        var bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(bytes == 0, $"{name}: 100 decode steps allocated {bytes} managed bytes");
        Assert.Equal(allocations, cache.Allocations);
        Assert.Equal(prompt.Length + 100, session.Length);

        // Memory: the cache is bounded by the session's length, twice over for the swap scheme.
        var perToken = model.Info.KvCacheBytesPerToken;
        Assert.True(cache.Bytes <= (cache.Shared ? 1 : 2) * (long)session.MaxLength * perToken,
            $"{name}: the cache holds {cache.Bytes} bytes for {session.MaxLength} positions of {perToken} bytes (shared: {cache.Shared})");
        session.Park();
        Assert.True(cache.Bytes <= (long)session.MaxLength * perToken);
        // A parked session goes on as before: the next step is the greedy continuation of the full pass.
        using var fresh = model.CreateSession();
        fresh.Append(session.Tokens);
        session.Append(KvCacheConformanceTests.ArgMaxLowestId(session.NextTokenLogits));
        Assert.Equal(KvCacheConformanceTests.ArgMaxLowestId(fresh.NextTokenLogits), session.Tokens[^1]);
    }

    [SharedModelFact("tiny-phi3-gqa-fp16")]
    public void SharingTheGroupQueryAttentionBufferGivesTheSameLogits()
    {
        const string name = "tiny-phi3-gqa-fp16";
        var testCase = ConformanceModels.Get(name);
        using var shared = LanguageModel.Load(testCase.Path, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var copied = LanguageModel.Load(testCase.Path, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, ShareCacheBuffer = false });
        Assert.True(shared.Runtime.Graph.SharesCacheBuffer, "the Phi-3 GroupQueryAttention graph should share its cache buffer");
        Assert.False(copied.Runtime.Graph.SharesCacheBuffer);
        SameLogits(shared, copied, testCase.PromptIds, steps: 40);
    }

    [Fact]
    public void TheDevicePathSlicesItsCacheInPlaceOnTheRepositoryModel() => TheDevicePathSlicesItsCacheInPlace(ConformanceModels.Repo);

    [SharedModelTheory]
    [MemberData(nameof(ConformanceModels.Shared), MemberType = typeof(ConformanceModels))]
    public void TheDevicePathSlicesItsCacheInPlaceOnSharedModels(string name) => TheDevicePathSlicesItsCacheInPlace(name);

    /// <summary>
    /// The device path (CUDA's: ONNX Runtime's output tensors as the cache, forks and rewinds sliced by a Slice graph on the
    /// same provider) run on the CPU, against the host path: the same logits, and a rewind or fork runs no prefill again.
    /// </summary>
    private static void TheDevicePathSlicesItsCacheInPlace(string name)
    {
        var prompt = ConformanceModels.Get(name).PromptIds;
        using var host = ConformanceModels.Load(name);
        using var device = ConformanceModels.Load(name);
        device.Runtime.Graph.UseHostCache = false;
        SameLogits(host, device, prompt, steps: 24);

        using var session = device.CreateSession();
        Assert.Null(session.HostCache);
        session.Append(prompt);
        session.Append(KvCacheConformanceTests.ArgMaxLowestId(session.NextTokenLogits));
        var run = session.TokensRun;
        session.Rewind(prompt.Length);
        Assert.Equal(run + 1, session.TokensRun); // only the last kept token runs again
        using var fork = session.Fork();
        Assert.Equal(0, fork.TokensRun);
        Assert.Equal(session.NextTokenLogits.ToArray(), fork.NextTokenLogits.ToArray());

        // Scoring's rows from the third on (sliced on the device before they come back) equal the host path's.
        var vocab = host.Info.VocabularySize;
        using var onHost = host.CreateSession();
        using var onDevice = device.CreateSession();
        var rowsOnHost = new float[(prompt.Length - 2) * vocab];
        var rowsOnDevice = new float[(prompt.Length - 2) * vocab];
        onHost.AppendWithAllLogits(prompt, rowsOnHost, 2, CancellationToken.None);
        onDevice.AppendWithAllLogits(prompt, rowsOnDevice, 2, CancellationToken.None);
        Assert.Equal(rowsOnHost, rowsOnDevice);
        Assert.Equal(onHost.NextTokenLogits.ToArray(), onDevice.NextTokenLogits.ToArray());
    }

    /// <summary>Greedy decoding on both models, step by step, including a rewind and a fork: identical logits.</summary>
    internal static void SameLogits(LanguageModel a, LanguageModel b, int[] prompt, int steps)
    {
        using var sa = a.CreateSession(prompt.Length + steps + 3);
        using var sb = b.CreateSession(prompt.Length + steps + 3);
        sa.Append(prompt);
        sb.Append(prompt);
        for (var step = 0; step < steps; step++)
        {
            Assert.Equal(sb.NextTokenLogits.ToArray(), sa.NextTokenLogits.ToArray());
            var id = KvCacheConformanceTests.ArgMaxLowestId(sa.NextTokenLogits);
            sa.Append(id);
            sb.Append(id);
            if (step == steps / 2)
            {
                sa.Rewind(sa.Length - 3);
                sb.Rewind(sb.Length - 3);
                using var fork = sa.Fork();
                Assert.Equal(sb.NextTokenLogits.ToArray(), fork.NextTokenLogits.ToArray());

                // Speculative truncation: append three tokens with every row's logits, keep one of them.
                var vocab = a.Info.VocabularySize;
                int[] draft = [id, id, id];
                var rowsA = new float[3 * vocab];
                var rowsB = new float[3 * vocab];
                sa.AppendWithAllLogits(draft, rowsA, CancellationToken.None);
                sb.AppendWithAllLogits(draft, rowsB, CancellationToken.None);
                Assert.Equal(rowsB, rowsA);
                sa.Truncate(sa.Length - 2, rowsA.AsSpan(0, vocab));
                sb.Truncate(sb.Length - 2, rowsB.AsSpan(0, vocab));
                sa.Append(id);
                sb.Append(id);
                Assert.Equal(sb.NextTokenLogits.ToArray(), sa.NextTokenLogits.ToArray());
                sa.Rewind(sa.Length - 2);
                sb.Rewind(sb.Length - 2);
            }
        }
    }
}
