namespace OnnxLM.Tests;

/// <summary>
/// A long prompt joining a running batch is prefilled in chunks of <see cref="LanguageModelOptions.PrefillChunkSize"/> with
/// a decode step of the running rows between two chunks (counted in steps, not time), and every request's tokens are those
/// of running it alone and of prefilling it whole; on kjv-tiny and on its GroupQueryAttention build.
/// </summary>
public sealed class ChunkedPrefillTests
{
    private const int ChunkSize = 16;

    private static LanguageModel Load(bool groupQuery, int maxBatchSize, int chunkSize)
    {
        var folder = groupQuery ? KjvTinyGqa.Folder : TestPaths.RepoModel("kjv-tiny");
        return LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, MaxBatchSize = maxBatchSize, PrefillChunkSize = chunkSize });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ALongPromptJoiningARunningBatchIsPrefilledInChunksBetweenTheOthersSteps(bool groupQuery)
    {
        using var alone = Load(groupQuery, 1, LanguageModelOptions.DefaultPrefillChunkSize);
        using var chunked = Load(groupQuery, 4, ChunkSize);
        using var whole = Load(groupQuery, 4, 4096);
        var text = File.ReadAllText(TestPaths.TestData(Path.Combine("kjv", "revelation.txt")));
        var longPrompt = alone.Tokenizer.Encode(text)[..120]; // 8 chunks of 16 (the last one 8)
        var shortPrompt = alone.Tokenizer.Encode("In the beginning");
        var running = new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [] };
        var joining = new GenerationOptions { MaxNewTokens = 10, StopTokenIds = [] };
        var expectedRunning = await alone.GenerateAsync(shortPrompt, running);
        var expectedJoining = await alone.GenerateAsync(longPrompt, joining);

        foreach (var (model, chunks) in new[] { (chunked, 8), (whole, 0) })
        {
            var scheduler = model.Runtime.Scheduler!;
            var stepsAtChunks = new List<int>();
            scheduler.ChunkPrefilled = steps =>
            {
                lock (stepsAtChunks) stepsAtChunks.Add(steps);
            };

            // The running request holds the loop at its third token until the long one is queued, so the long one surely
            // joins a running batch (however the machine schedules the two threads).
            using var gate = new GateProcessor(at: 3);
            var gated = new GenerationOptions { MaxNewTokens = running.MaxNewTokens, StopTokenIds = [] };
            gated.LogitProcessors.Add(gate);
            var first = model.GenerateAsync(shortPrompt, gated);
            Assert.True(gate.Reached.Wait(TimeSpan.FromSeconds(30)), "the running request never reached its third token");
            var second = model.GenerateAsync(longPrompt, joining);
            Assert.True(SpinWait.SpinUntil(() => scheduler.WaitingGroups > 0 || second.IsCompleted, TimeSpan.FromSeconds(30)));
            gate.Release.Set();
            var streamed = (await first).TokenIds;
            var secondResult = await second;
            scheduler.ChunkPrefilled = null;

            Assert.Equal(expectedRunning.TokenIds, streamed);
            Assert.Equal(expectedJoining.TokenIds, secondResult.TokenIds);
            lock (stepsAtChunks)
            {
                Assert.Equal(chunks, stepsAtChunks.Count);
                for (var i = 1; i < stepsAtChunks.Count; i++)
                {
                    // The running row took exactly one decode step between two chunks of the long prompt.
                    Assert.Equal(stepsAtChunks[i - 1] + 1, stepsAtChunks[i]);
                }
            }
        }
    }

    [Fact]
    public async Task ALongPromptAloneAndSamplesOfALongPromptGiveTheTokensOfRunningAlone()
    {
        using var alone = Load(false, 1, LanguageModelOptions.DefaultPrefillChunkSize);
        using var chunked = Load(false, 4, ChunkSize);
        var text = File.ReadAllText(TestPaths.TestData(Path.Combine("kjv", "revelation.txt")));
        var prompts = new[] { alone.Tokenizer.Encode(text)[..100], alone.Tokenizer.Encode(text)[50..120] };
        var options = new GenerationOptions { MaxNewTokens = 12, StopTokenIds = [] };

        // Two long prompts and a short one arriving together: both long ones prefill in chunks, in turn, the short one decodes.
        var results = await Task.WhenAll(chunked.GenerateAsync(prompts[0], options), chunked.GenerateAsync(prompts[1], options), chunked.GenerateAsync("And God said", options));
        Assert.Equal((await alone.GenerateAsync(prompts[0], options)).TokenIds, results[0].TokenIds);
        Assert.Equal((await alone.GenerateAsync(prompts[1], options)).TokenIds, results[1].TokenIds);
        Assert.Equal((await alone.GenerateAsync("And God said", options)).TokenIds, results[2].TokenIds);

        // n samples of a long prompt join as n rows of one chunked prefill, with the samples of forks alone.
        var sampled = new GenerationOptions { MaxNewTokens = 12, StopTokenIds = [], Temperature = 0.9f, Seed = 7 };
        var longText = text[..400];
        Assert.True(alone.Tokenizer.Encode(longText).Length > 3 * ChunkSize);
        var expectedMany = await alone.GenerateManyAsync(longText, 3, sampled);
        var many = await chunked.GenerateManyAsync(longText, 3, sampled);
        Assert.Equal(expectedMany.Select(r => r.TokenIds), many.Select(r => r.TokenIds));
    }

    /// <summary>Leaves logits alone; at its <c>at</c>-th call it signals <see cref="Reached"/> and waits for <see cref="Release"/>.</summary>
    private sealed class GateProcessor(int at) : OnnxLM.Sampling.ILogitProcessor, IDisposable
    {
        private int _calls;

        public ManualResetEventSlim Reached { get; } = new();

        public ManualResetEventSlim Release { get; } = new();

        public void Process(Span<float> logits, OnnxLM.Sampling.SamplingContext context)
        {
            if (++_calls != at) return;
            Reached.Set();
            Release.Wait(TimeSpan.FromSeconds(30));
        }

        public void Dispose()
        {
            Reached.Dispose();
            Release.Dispose();
        }
    }

    [Fact]
    public void TheChunkSizeIsValidated()
    {
        Assert.Equal(LanguageModelOptions.DefaultPrefillChunkSize, new LanguageModelOptions().PrefillChunkSize);
        var error = Assert.Throws<InvalidOptionException>(() => new LanguageModelOptions { PrefillChunkSize = 0 });
        Assert.Contains("PrefillChunkSize", error.Message);
    }
}
