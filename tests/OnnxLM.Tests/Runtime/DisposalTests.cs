namespace OnnxLM.Tests;

/// <summary>Disposal is safe from any thread at any time: work in flight stops and finishes first, later calls get ObjectDisposedException.</summary>
public sealed class DisposalTests
{
    [Fact]
    public async Task DisposingTheModelDuringAGenerationStopsIt()
    {
        var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        var seen = 0;
        var ex = await Assert.ThrowsAnyAsync<ObjectDisposedException>(async () =>
        {
            await foreach (var _ in model.GenerateStreamingAsync("In the beginning", new GenerationOptions { MaxNewTokens = 250, StopTokenIds = [] }))
            {
                if (++seen == 2) await Task.Run(model.Dispose); // from another thread, with the decoding loop running
            }
        });
        Assert.True(seen < 250, $"{seen} tokens: the generation was not stopped");
        await Assert.ThrowsAsync<ObjectDisposedException>(() => model.GenerateAsync("x"));
        Assert.Throws<ObjectDisposedException>(() => model.CreateSession());
        model.Dispose(); // twice is fine
    }

    [Fact]
    public async Task DisposingASessionWhileAnotherThreadAppendsIsSafe()
    {
        using var model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        var session = model.CreateSession();
        var ids = model.Tokenizer.Encode("In the beginning God created the heaven and the earth.");
        session.Append(ids);
        using var started = new ManualResetEventSlim();
        var appending = Task.Run(() =>
        {
            started.Set();
            for (var i = 0; ; i++)
            {
                session.Append(ids[i % ids.Length]);
                if (session.Length > 200) session.Rewind(ids.Length);
            }
        });
        started.Wait();
        await Task.Delay(20);
        session.Dispose(); // does not throw, and waits for the run in flight
        await Assert.ThrowsAsync<ObjectDisposedException>(() => appending);
        Assert.Throws<ObjectDisposedException>(() => session.Append(1));

        // The model is still usable.
        var result = await model.GenerateAsync("In the beginning", new GenerationOptions { MaxNewTokens = 3 });
        Assert.Equal(3, result.TokenIds.Count);
    }
}
