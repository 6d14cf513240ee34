namespace OnnxLM.Tests;

/// <summary>
/// The batched cache against sessions run alone: rows of different lengths joining at different steps and leaving, the
/// logits of every row at every step equal to its alone-run's within the model's tolerance (1e-4 for fp32 graphs: the
/// batched matmuls sum in another order), and greedy ids identical.
/// </summary>
public sealed class BatchedCacheTests
{
    /// <summary>Prompts of different lengths (kjv-tiny ids), each with the step it joins at and the step it leaves after.</summary>
    private static readonly (int[] Prompt, int JoinAt, int LeaveAfter)[] Rows =
    [
        ([0, 1093, 260, 343, 392, 324, 683, 46], 0, 12),
        ([0, 343, 392], 0, 20),
        ([0, 1093, 260, 343, 392, 324, 683, 46, 260, 343, 392, 324, 683, 46, 392, 324, 683, 46, 260], 3, 20),
        ([0, 260], 5, 9),
        ([0, 683, 46, 260, 343], 12, 20),
    ];

    [Fact]
    public void RowsJoiningAndLeavingGiveTheLogitsOfRunningAlone()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        AssertBatchedEqualsAlone(model, Rows, 1e-4f);
    }

    [Fact]
    public void GroupQueryAttentionRowsJoiningAndLeavingGiveTheLogitsOfRunningAlone()
    {
        using var model = KjvTinyGqa.Load();
        Assert.True(model.Runtime.Graph.AttentionReadsLengths);
        Assert.True(BatchedCache.IsSupported(model.Runtime.Graph, model.Info.GraphPath));
        Assert.NotNull(model.Runtime.Scheduler);
        AssertBatchedEqualsAlone(model, Rows, 1e-4f);
        AssertPrefillTogetherEqualsAlone(model, [Rows[0].Prompt, Rows[1].Prompt, Rows[2].Prompt, Rows[3].Prompt], 1e-4f);
    }

    [Fact]
    public void AGroupQueryBatchAppendsInPlaceInOneBufferThatWidensAsRowsGrow()
    {
        using var model = KjvTinyGqa.Load();
        // Rows long enough to outgrow the first room (width + 32 columns) and be copied into wider rows more than once.
        AssertBatchedEqualsAlone(model, [(Rows[2].Prompt, 0, 90), (Rows[3].Prompt, 4, 70), (Rows[0].Prompt, 30, 90)], 1e-4f);

        using var cache = new BatchedCache(model.Runtime);
        Assert.True(cache.SharesBuffer);
        cache.Add([Rows[0].Prompt, Rows[1].Prompt], [1, 1], default);
        var strides = new HashSet<int> { cache.Stride };
        for (var step = 0; step < 80; step++)
        {
            Assert.True(cache.Stride >= cache.Width, $"step {step}: rows {cache.Stride} columns wide for a cache of width {cache.Width}");
            cache.Step([ArgMax(cache.Logits(0)), ArgMax(cache.Logits(1))], default);
            strides.Add(cache.Stride);
        }

        Assert.True(strides.Count >= 3, $"widths seen: {string.Join(", ", strides)}");

        // Without buffer sharing the batch swaps two buffers of exactly the width, as other graphs do.
        using var swapping = LanguageModel.Load(KjvTinyGqa.Folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, ShareCacheBuffer = false });
        using var two = new BatchedCache(swapping.Runtime);
        Assert.False(two.SharesBuffer);
        two.Add([Rows[0].Prompt, Rows[1].Prompt], [1, 1], default);
        two.Step([ArgMax(two.Logits(0)), ArgMax(two.Logits(1))], default);
        Assert.Equal(two.Width, two.Stride);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ASessionJoiningARunningBatchGivesTheLogitsOfRunningAlone(bool groupQuery)
    {
        using var model = groupQuery ? KjvTinyGqa.Load() : LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var together = new BatchedCache(model.Runtime);
        using var alone = new BatchedCache(model.Runtime);
        together.Add([Rows[0].Prompt, Rows[1].Prompt], [1, 1], default);
        alone.Add([Rows[0].Prompt, Rows[1].Prompt], [1, 1], default);
        for (var step = 0; step < 3; step++)
        {
            var ids = Enumerable.Range(0, alone.Count).Select(b => ArgMax(alone.Logits(b))).ToArray();
            alone.Step(ids, default);
            together.Step(ids, default);
        }

        // A longer prompt prefilled in a session (in two parts, as chunked prefill does), joining as two rows; and a shorter one.
        foreach (var prompt in new[] { Rows[2].Prompt, Rows[3].Prompt })
        {
            using var session = model.CreateSession();
            session.Append(prompt.AsSpan(0, prompt.Length / 2));
            session.Append(prompt.AsSpan(prompt.Length / 2));
            together.AddFromSession(session, copies: 2);
            alone.Add(prompt, 2, default);
        }

        Assert.Equal(6, together.Count);
        for (var step = 0; step < 6; step++)
        {
            for (var b = 0; b < together.Count; b++)
            {
                Assert.Equal(alone.Length(b), together.Length(b));
                AssertClose(alone.Logits(b), together.Logits(b), 1e-4f);
            }

            var ids = Enumerable.Range(0, together.Count).Select(b => ArgMax(alone.Logits(b))).ToArray();
            alone.Step(ids, default);
            together.Step(ids, default);
        }
    }

    [Fact]
    public void ASteadyBatchedStepAllocatesNoManagedMemory()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var cache = new BatchedCache(model.Runtime);
        cache.Add([Rows[0].Prompt, Rows[1].Prompt, Rows[2].Prompt], [1, 1, 1], CancellationToken.None);
        var ids = new int[cache.Count];
        void Step()
        {
            for (var b = 0; b < ids.Length; b++) ids[b] = KvCacheConformanceTests.ArgMaxLowestId(cache.Logits(b));
            cache.Step(ids, CancellationToken.None);
        }

        // The step's buffers grow by doubling with the width (each of a tensor's two buffers on its own): after 180 steps
        // (width 199) they hold more than the next 50 steps need, up to the context of 256.
        for (var i = 0; i < 180; i++) Step();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 50; i++) Step();
        var bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(bytes == 0, $"50 batched steps of 3 rows allocated {bytes} managed bytes");
    }

    [SharedModelTheory]
    [MemberData(nameof(ConformanceModels.Shared), MemberType = typeof(ConformanceModels))]
    public void SharedGraphsThatBatchGiveTheLogitsOfRunningAlone(string name)
    {
        using var model = ConformanceModels.Load(name);
        var supported = BatchedCache.IsSupported(model.Runtime.Graph, model.Info.GraphPath);
        if (name == "tiny-phi3-gqa-fp16")
        {
            Assert.False(supported); // no position_ids (positions derived from the past length): decodes alone
            return;
        }

        Assert.True(supported, $"{name} was expected to batch");
        var prompt = ConformanceModels.Get(name).PromptIds;
        (int[], int, int)[] rows =
        [
            (prompt, 0, 8),
            (prompt[..3], 0, 10),
            (prompt[2..], 2, 10),
            (prompt[..1], 4, 6),
        ];
        AssertBatchedEqualsAlone(model, rows, ConformanceModels.Get(name).Tolerance);
        AssertPrefillTogetherEqualsAlone(model, [prompt, prompt[..3], prompt[2..], prompt[..1]], ConformanceModels.Get(name).Tolerance);
    }

    [Fact]
    public void AddingCopiesGivesRowsWithTheSameLogits()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var cache = new BatchedCache(model.Runtime);
        cache.Add([0, 343, 392], 1, default);
        cache.Add([0, 1093, 260, 343, 392], 3, default);
        Assert.Equal(4, cache.Count);
        Assert.Equal(5, cache.Width);
        Assert.Equal(cache.Logits(1).ToArray(), cache.Logits(3).ToArray());
        cache.Step([10, 20, 20, 30], default);
        Assert.Equal(cache.Logits(1).ToArray(), cache.Logits(2).ToArray());
        Assert.NotEqual(cache.Logits(1).ToArray(), cache.Logits(3).ToArray());
        cache.Remove([false, true, true, true]);
        Assert.Equal(1, cache.Count);
        Assert.Equal(4, cache.Width); // trimmed to the remaining row's length
    }

    [Fact]
    public void PromptsPrefilledTogetherGiveTheLogitsOfPrefillingEachAlone()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        AssertPrefillTogetherEqualsAlone(model, [Rows[0].Prompt, Rows[1].Prompt, Rows[2].Prompt, Rows[3].Prompt], 1e-4f);
    }

    private static void AssertPrefillTogetherEqualsAlone(LanguageModel model, int[][] prompts, float tolerance)
    {
        using var together = new BatchedCache(model.Runtime);
        together.Add([9, 10, 11], 1, default); // a row already decoding when the others join
        together.Add(prompts, [1, 2, 1, 1], default);
        using var alone = new BatchedCache(model.Runtime);
        alone.Add([9, 10, 11], 1, default);
        foreach (var (prompt, copies) in prompts.Zip([1, 2, 1, 1])) alone.Add(prompt, copies, default);
        Assert.Equal(6, together.Count);
        for (var step = 0; step < 6; step++)
        {
            for (var b = 0; b < together.Count; b++)
            {
                Assert.Equal(alone.Length(b), together.Length(b));
                AssertClose(alone.Logits(b), together.Logits(b), tolerance);
            }

            var ids = Enumerable.Range(0, together.Count).Select(b => ArgMax(alone.Logits(b))).ToArray();
            alone.Step(ids, default);
            together.Step(ids, default);
        }
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tolerance)
    {
        Assert.Equal(ArgMax(expected), ArgMax(actual));
        var max = 0f;
        for (var i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        Assert.True(max <= tolerance, $"largest logit difference {max} > {tolerance}");
    }

    /// <summary>
    /// Greedy-decodes every row both alone (its own session) and as a row of one batched cache, with rows joining at their
    /// step and leaving after theirs, and compares the logits before every token.
    /// </summary>
    private static void AssertBatchedEqualsAlone(LanguageModel model, IReadOnlyList<(int[] Prompt, int JoinAt, int LeaveAfter)> rows, float tolerance)
    {
        var steps = rows.Max(r => r.LeaveAfter);
        var alone = new List<float[]>[rows.Count];
        for (var r = 0; r < rows.Count; r++)
        {
            alone[r] = [];
            using var session = model.CreateSession();
            session.Append(rows[r].Prompt);
            for (var t = rows[r].JoinAt; t <= rows[r].LeaveAfter; t++)
            {
                alone[r].Add(session.NextTokenLogits.ToArray());
                session.Append(ArgMax(session.NextTokenLogits));
            }
        }

        using var cache = new BatchedCache(model.Runtime);
        var active = new List<int>(); // row index per batch row
        var seen = new int[rows.Count];
        var maxDifference = 0f;
        for (var t = 0; t <= steps; t++)
        {
            if (t > 0)
            {
                var ids = active.Select(r => ArgMax(cache.Logits(active.IndexOf(r)))).ToArray();
                cache.Step(ids, default);
            }

            for (var r = 0; r < rows.Count; r++)
            {
                if (rows[r].JoinAt == t)
                {
                    cache.Add(rows[r].Prompt, 1, default);
                    active.Add(r);
                }
            }

            for (var b = 0; b < active.Count; b++)
            {
                var r = active[b];
                var expected = alone[r][seen[r]++];
                var actual = cache.Logits(b);
                Assert.Equal(rows[r].Prompt.Length + seen[r] - 1, cache.Length(b));
                Assert.Equal(ArgMax(expected), ArgMax(actual));
                for (var i = 0; i < expected.Length; i++)
                {
                    maxDifference = Math.Max(maxDifference, Math.Abs(expected[i] - actual[i]));
                }
            }

            var leaving = active.Select(r => rows[r].LeaveAfter == t).ToArray();
            cache.Remove(leaving);
            active.RemoveAll(r => rows[r].LeaveAfter == t);
            if (active.Count > 0)
            {
                Assert.Equal(active.Max(r => cache.Length(active.IndexOf(r))), cache.Width);
            }
        }

        Assert.All(Enumerable.Range(0, rows.Count), r => Assert.Equal(alone[r].Count, seen[r]));
        Assert.True(maxDifference <= tolerance, $"largest logit difference {maxDifference} > {tolerance}");
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best]) best = i;
        }

        return best;
    }
}
