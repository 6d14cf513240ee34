using OnnxLM.Sampling;

namespace OnnxLM.Tests;

/// <summary>
/// Concurrent generations on one model with batching on (<see cref="LanguageModelOptions.MaxBatchSize"/>) give what each gives
/// alone (batching off): greedy ids identical, log-probs within 1e-4, per-row samplers and seeds kept, rows leaving by stop
/// id, length or cancellation without disturbing the others, n samples as one batch, disposal mid-run.
/// </summary>
public sealed class BatchedGenerationTests
{
    private const double LogProbTolerance = 1e-4;

    private static readonly string[] Prompts =
    [
        "In the beginning",
        "And God said",
        "And it came to pass, when the king heard the words of the book of the law, that he rent his clothes.",
        "Blessed",
        "Then Jesus said unto them, Verily, verily, I say unto you",
        "The LORD is my shepherd; I shall not want.",
    ];

    private static LanguageModel Load(int maxBatchSize) =>
        LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = maxBatchSize });

    [Fact]
    public void BatchingIsOnByDefaultForGraphsThatCanBatch()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        Assert.NotNull(model.Runtime.Scheduler);
        using var off = Load(1);
        Assert.Null(off.Runtime.Scheduler);
        Assert.Throws<InvalidOptionException>(() => new LanguageModelOptions { MaxBatchSize = 0 });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // the GroupQueryAttention build: rows kept from column 0, lengths read from the mask
    public async Task ConcurrentGreedyGenerationsJoiningAtDifferentStepsEqualRunningAlone(bool groupQuery)
    {
        using var alone = groupQuery ? KjvTinyGqa.Load(1) : Load(1);
        using var batched = groupQuery ? KjvTinyGqa.Load(4) : Load(4); // six requests, four rows: two wait and join as rows leave
        Assert.NotNull(batched.Runtime.Scheduler);
        var options = Prompts.Select((_, i) => new GenerationOptions { MaxNewTokens = 10 + 7 * i, StopTokenIds = [] }).ToArray();
        var expected = new GenerationResult[Prompts.Length];
        for (var i = 0; i < Prompts.Length; i++) expected[i] = await alone.GenerateAsync(Prompts[i], options[i]);

        // Requests arrive while others are decoding: each starts after the previous one has streamed i tokens.
        var tasks = new List<Task<GenerationResult>>();
        var first = batched.GenerateStreamingAsync(Prompts[0], options[0]).GetAsyncEnumerator();
        var streamed = new List<GeneratedToken>();
        for (var i = 1; i < Prompts.Length; i++)
        {
            for (var k = 0; k < 2; k++)
            {
                Assert.True(await first.MoveNextAsync());
                streamed.Add(first.Current);
            }

            tasks.Add(batched.GenerateAsync(Prompts[i], options[i]));
        }

        while (await first.MoveNextAsync()) streamed.Add(first.Current);
        await first.DisposeAsync();
        var results = new[] { Generator.ToResult(streamed, expected[0].PromptTokenCount) }.Concat(await Task.WhenAll(tasks)).ToArray();

        for (var i = 0; i < Prompts.Length; i++)
        {
            AssertSame(expected[i], results[i]);
        }
    }

    [Fact]
    public async Task ALoneRequestDecodesInItsOwnSessionAndMovesIntoTheBatchWhenAnotherJoins()
    {
        using var alone = Load(1);
        using var batched = Load(4);
        var longer = new GenerationOptions { MaxNewTokens = 200, StopTokenIds = [] }; // still decoding when the second arrives
        var options = new GenerationOptions { MaxNewTokens = 30, StopTokenIds = [] };
        var expectedFirst = await alone.GenerateAsync(Prompts[2], longer);
        var expectedSecond = await alone.GenerateAsync(Prompts[0], options);

        var first = batched.GenerateStreamingAsync(Prompts[2], longer).GetAsyncEnumerator();
        var streamed = new List<GeneratedToken>();
        for (var k = 0; k < 5; k++)
        {
            Assert.True(await first.MoveNextAsync());
            streamed.Add(first.Current);
        }

        // Alone so far: the zero-waste session step, not a batch of one.
        Assert.True(batched.Runtime.Scheduler!.DecodingAlone);
        var second = batched.GenerateAsync(Prompts[0], options);
        while (await first.MoveNextAsync()) streamed.Add(first.Current);
        await first.DisposeAsync();
        var secondResult = await second;

        Assert.Equal(expectedFirst.TokenIds, streamed.Select(t => t.Id).ToArray());
        Assert.Equal(expectedFirst.Text, string.Concat(streamed.Select(t => t.Text)));
        Assert.Equal(expectedSecond.TokenIds, secondResult.TokenIds);
        Assert.False(batched.Runtime.Scheduler.DecodingAlone);
    }

    [Fact]
    public async Task RowsLeavingByStopIdLengthAndCancellationLeaveTheOthersUnchanged()
    {
        using var alone = Load(1);
        using var batched = Load(8);
        var reference = await alone.GenerateAsync(Prompts[0], new GenerationOptions { MaxNewTokens = 30, StopTokenIds = [] });
        var stopId = reference.TokenIds[5];
        var options = new[]
        {
            new GenerationOptions { MaxNewTokens = 30, StopTokenIds = [stopId] },        // leaves by its stop id
            new GenerationOptions { MaxNewTokens = 3, StopTokenIds = [] },               // leaves by length
            new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [] },              // stays to the end
            new GenerationOptions { MaxNewTokens = 25, StopTokenIds = [], Temperature = 0.9f, TopP = 0.95f, Seed = 7 }, // sampled
        };
        var expected = new GenerationResult[options.Length];
        for (var i = 0; i < options.Length; i++) expected[i] = await alone.GenerateAsync(Prompts[i], options[i]);
        Assert.Equal(FinishReason.Stop, expected[0].FinishReason);

        using var cancel = new CancellationTokenSource();
        var cancelled = Task.Run(async () =>
        {
            var count = 0;
            await foreach (var _ in batched.GenerateStreamingAsync(Prompts[4], new GenerationOptions { MaxNewTokens = 200, StopTokenIds = [] }, cancel.Token))
            {
                if (++count == 4) await cancel.CancelAsync();
            }
        });
        var tasks = options.Select((o, i) => batched.GenerateAsync(Prompts[i], o)).ToArray();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        var results = await Task.WhenAll(tasks);

        for (var i = 0; i < options.Length; i++)
        {
            AssertSame(expected[i], results[i]);
        }

        Assert.Equal(FinishReason.Stop, results[0].FinishReason);
        Assert.Equal(3, results[1].TokenIds.Count);
    }

    [Fact]
    public async Task SampledRowsWithSeedsEqualRunningAloneWithTheSameSeed()
    {
        using var alone = Load(1);
        using var batched = Load(8);
        var options = Enumerable.Range(0, 6).Select(i => new GenerationOptions
        {
            MaxNewTokens = 24, StopTokenIds = [], Temperature = 0.7f + 0.1f * i, TopK = 50, TopP = 0.9f, RepetitionPenalty = 1.1f, Seed = 100 + i,
        }).ToArray();
        var expected = new GenerationResult[options.Length];
        for (var i = 0; i < options.Length; i++) expected[i] = await alone.GenerateAsync(Prompts[i], options[i]);
        var results = await Task.WhenAll(options.Select((o, i) => batched.GenerateAsync(Prompts[i], o)));
        for (var i = 0; i < options.Length; i++)
        {
            AssertSame(expected[i], results[i]);
        }
    }

    [Fact]
    public async Task GenerateManyDecodesItsSamplesAsOneBatchWithTheResultsOfForks()
    {
        using var alone = Load(1);
        using var batched = Load(8);
        var options = new GenerationOptions { MaxNewTokens = 20, Temperature = 1.0f, Seed = 3, StopTokenIds = [] };
        var expected = await alone.GenerateManyAsync("And God said", 5, options);
        var results = await batched.GenerateManyAsync("And God said", 5, options);
        Assert.Equal(5, results.Count);
        for (var i = 0; i < 5; i++)
        {
            AssertSame(expected[i], results[i]);
        }

        Assert.True(results.Select(r => r.Text).Distinct().Count() > 1, "different seeds gave the same sample every time");

        // More samples than rows: the group runs as one batch once the batch is empty.
        var many = await Load(2).GenerateManyAsync("And God said", 5, options);
        Assert.Equal(expected.Select(r => r.Text), many.Select(r => r.Text));
    }

    [Fact]
    public async Task DisposingTheModelEndsEveryBatchedGeneration()
    {
        var model = Load(8);
        var started = new TaskCompletionSource();
        var seen = 0;
        var streams = Enumerable.Range(0, 4).Select(i => Task.Run(async () =>
        {
            await foreach (var _ in model.GenerateStreamingAsync(Prompts[i], new GenerationOptions { MaxNewTokens = 250, StopTokenIds = [] }))
            {
                if (Interlocked.Increment(ref seen) == 8) started.TrySetResult();
            }
        })).ToArray();
        await started.Task;
        await Task.Run(model.Dispose);
        foreach (var stream in streams)
        {
            await Assert.ThrowsAnyAsync<ObjectDisposedException>(() => stream);
        }

        Assert.True(seen < 4 * 250, $"{seen} tokens: the generations were not stopped");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => model.GenerateAsync("x"));
    }

    [Fact]
    public async Task ARowWhoseProcessorThrowsEndsAloneAndTheBatchGoesOn()
    {
        using var alone = Load(1);
        using var batched = Load(8);
        var plain = new GenerationOptions { MaxNewTokens = 20, StopTokenIds = [] };
        var expected = await alone.GenerateAsync(Prompts[1], plain);
        var failing = new GenerationOptions { MaxNewTokens = 20, StopTokenIds = [] };
        failing.LogitProcessors.Add(new ThrowingProcessor(after: 3));
        var tasks = new[] { batched.GenerateAsync(Prompts[0], failing), batched.GenerateAsync(Prompts[1], plain) };
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => tasks[0]);
        Assert.Equal("processor failed at call 4", error.Message);
        AssertSame(expected, await tasks[1]);
        AssertSame(expected, await batched.GenerateAsync(Prompts[1], plain)); // the loop is still serving
    }

    private sealed class ThrowingProcessor(int after) : ILogitProcessor
    {
        private int _calls;

        public void Process(Span<float> logits, SamplingContext context)
        {
            if (++_calls > after) throw new InvalidOperationException($"processor failed at call {_calls}");
        }
    }

    [SharedModelFact("tiny-phi3-gqa-fp16")]
    public async Task AGraphThatCannotBatchDecodesConcurrentRequestsAlone()
    {
        using var model = LanguageModel.Load(TestPaths.SharedModel("tiny-phi3-gqa-fp16"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = 8 });
        Assert.Null(model.Runtime.Scheduler);
        var prompt = ConformanceModels.Get("tiny-phi3-gqa-fp16").PromptIds;
        var options = new GenerationOptions { MaxNewTokens = 6, StopTokenIds = [] };
        var results = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => model.GenerateAsync(prompt, options)));
        Assert.All(results, r => Assert.Equal(results[0].TokenIds, r.TokenIds));
    }

    private static void AssertSame(GenerationResult expected, GenerationResult actual)
    {
        Assert.Equal(expected.TokenIds, actual.TokenIds);
        Assert.Equal(expected.Text, actual.Text);
        Assert.Equal(expected.FinishReason, actual.FinishReason);
        for (var i = 0; i < expected.Tokens.Count; i++)
        {
            Assert.True(Math.Abs(expected.Tokens[i].LogProb - actual.Tokens[i].LogProb) <= LogProbTolerance,
                $"token {i}: log-prob {actual.Tokens[i].LogProb} batched vs {expected.Tokens[i].LogProb} alone");
        }
    }
}
