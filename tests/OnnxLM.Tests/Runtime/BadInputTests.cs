using Microsoft.Extensions.Logging;
using System.Text;

namespace OnnxLM.Tests;

/// <summary>Every kind of bad input gets a typed exception whose message names the problem.</summary>
public sealed class BadInputTests : IDisposable
{
    private const string Model = ConformanceModels.Repo; // the repository's own model: these run on a fresh clone
    private readonly string _temp = Directory.CreateTempSubdirectory("onnxlm-bad-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public void MissingFolderIsAModelFormatError()
    {
        var path = Path.Combine(_temp, "nope");
        var e = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(path));
        Assert.Contains("does not exist", e.Message);
        Assert.Equal(path, e.Path);
    }

    [Fact]
    public void FolderWithoutConfigNamesBothLayouts()
    {
        File.WriteAllText(Path.Combine(_temp, "readme.txt"), "x");
        var e = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(_temp));
        Assert.Contains("genai_config.json", e.Message);
        Assert.Contains("config.json", e.Message);
        Assert.Contains("readme.txt", e.Message);
    }

    [Fact]
    public void CorruptConfigJsonIsReported()
    {
        File.WriteAllText(Path.Combine(_temp, "genai_config.json"), "{ \"model\": { \"type\": ");
        var e = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(_temp));
        Assert.Contains("not valid JSON", e.Message);
        Assert.EndsWith("genai_config.json", e.Path);
    }

    [Fact]
    public void WrongJsonTypeNamesTheKey()
    {
        File.WriteAllText(Path.Combine(_temp, "genai_config.json"),
            """{ "model": { "type": "llama", "context_length": "long", "decoder": { "filename": "model.onnx" } } }""");
        File.WriteAllBytes(Path.Combine(_temp, "model.onnx"), [1, 2, 3]);
        var e = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(_temp));
        Assert.Contains("context_length", e.Message);
    }

    [Fact]
    public void MissingGraphFileIsNamed()
    {
        File.WriteAllText(Path.Combine(_temp, "genai_config.json"),
            """{ "model": { "type": "llama", "decoder": { "filename": "decoder.onnx" } } }""");
        var e = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(_temp));
        Assert.Contains("decoder.onnx", e.Message);
    }

    [Fact]
    public void CorruptGraphIsAModelFormatError()
    {
        File.WriteAllText(Path.Combine(_temp, "config.json"), """{ "model_type": "llama" }""");
        File.WriteAllBytes(Path.Combine(_temp, "model.onnx"), Encoding.ASCII.GetBytes("this is not a protobuf"));
        var e = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(_temp));
        Assert.Contains("could not load", e.Message);
        Assert.EndsWith("model.onnx", e.Path);
    }

    [Fact]
    public void ConfigContradictingTheGraphListsWhatWasFound()
    {
        // Copy a real graph but state the wrong number of layers.
        var source = TestPaths.RepoModel(Model);
        File.Copy(Path.Combine(source, "model.onnx"), Path.Combine(_temp, "model.onnx"));
        var config = File.ReadAllText(Path.Combine(source, "genai_config.json"));
        var wrong = System.Text.RegularExpressions.Regex.Replace(config, "\"num_hidden_layers\": \\d+", "\"num_hidden_layers\": 3");
        Assert.NotEqual(config, wrong);
        File.WriteAllText(Path.Combine(_temp, "genai_config.json"), wrong);
        var e = Assert.Throws<ModelFormatException>(() => LanguageModel.Load(_temp));
        Assert.Contains("3 layers", e.Message);
        Assert.Contains("past_key_values.0.key", e.Message); // the found inputs are listed
    }

    [Fact]
    public void OutOfRangeTokenIdsAreRejectedAndTheSessionIsUnchanged()
    {
        using var model = ConformanceModels.Load(Model);
        using var session = model.CreateSession();
        session.Append([1, 455]);
        var vocab = model.Info.VocabularySize;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => session.Append([345, vocab]));
        Assert.Contains(vocab.ToString(), e.Message);
        Assert.Contains((vocab - 1).ToString(), e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Append(-1));
        Assert.Equal([1, 455], session.Tokens.ToArray());
    }

    [Fact]
    public async Task OverLongInputsAreContextLengthErrors()
    {
        using var model = ConformanceModels.Load(Model);
        var context = model.Info.ContextLength;
        var tooLong = Enumerable.Repeat(455, context).ToArray();
        var e = await Assert.ThrowsAsync<ContextLengthExceededException>(() => model.GenerateAsync(tooLong));
        Assert.Equal(context, e.MaxLength);
        Assert.Throws<ContextLengthExceededException>(() => model.CreateSession(context + 1));

        using var session = model.CreateSession(maxLength: 4);
        session.Append([1, 455, 345]);
        var e2 = Assert.Throws<ContextLengthExceededException>(() => session.Append([339, 384]));
        Assert.Equal(5, e2.RequestedLength);
        Assert.Equal(3, session.Length);

        await Assert.ThrowsAsync<ContextLengthExceededException>(() => model.ScoreAsync(tooLong, [455, 455]));
    }

    [Fact]
    public async Task GenerationStopsAtMaxNewTokensEvenNearTheContextEnd()
    {
        using var model = ConformanceModels.Load(Model);
        var prompt = Enumerable.Repeat(455, model.Info.ContextLength - 6).ToArray();
        var result = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 50, StopTokenIds = [] });
        Assert.Equal(6, result.TokenIds.Count); // capped by the context length
        Assert.Equal(FinishReason.Length, result.FinishReason);
    }

    [Fact]
    public async Task CancellationStopsGenerationAndLeavesTheModelUsable()
    {
        using var model = ConformanceModels.Load(Model);
        using var cts = new CancellationTokenSource();
        var seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in model.GenerateStreamingAsync([1, 455], new GenerationOptions { MaxNewTokens = 100, StopTokenIds = [] }, cts.Token))
            {
                if (++seen == 3)
                {
                    cts.Cancel();
                }
            }
        });
        Assert.Equal(3, seen); // stopped within one decoding step

        var after = await model.GenerateAsync([1, 455], new GenerationOptions { MaxNewTokens = 3 });
        Assert.NotEmpty(after.TokenIds);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => model.ScoreAsync([1, 455], [345], cts.Token));
    }

    [Fact]
    public void ConcurrentUseOfOneSessionIsRefused()
    {
        using var model = ConformanceModels.Load(Model);
        using var session = model.CreateSession();
        session.Append([1, 455]);

        // Another call holds the session (what a run on another thread does for its whole duration).
        using (session.Enter())
        {
            Assert.True(session.IsBusy);
            var e = Assert.Throws<InvalidOperationException>(() => session.Append(5));
            Assert.Contains("not thread-safe", e.Message);
            Assert.Throws<InvalidOperationException>(() => session.Rewind(1));
            Assert.Throws<InvalidOperationException>(() => session.Fork());
        }

        // The refused calls changed nothing; the session works once it is free.
        Assert.False(session.IsBusy);
        Assert.Equal(2, session.Length);
        session.Append(5);
        Assert.Equal([1, 455, 5], session.Tokens.ToArray());
    }

    [Fact]
    public async Task DisposedObjectsThrowObjectDisposed()
    {
        var model = ConformanceModels.Load(Model);
        var session = model.CreateSession();
        session.Append([1, 455]);
        session.Dispose();
        session.Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => session.Append(5));

        var live = model.CreateSession();
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => live.Append(5));
        live.Dispose();
        Assert.Throws<ObjectDisposedException>(() => model.CreateSession());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => model.ScoreAsync([1], [2]));
    }

    [Fact]
    public void OptionsRejectOutOfRangeValuesNamingTheOption()
    {
        var options = new GenerationOptions();
        Assert.Equal("Temperature", Assert.Throws<InvalidOptionException>(() => options.Temperature = -0.1f).ParamName);
        Assert.Equal("Temperature", Assert.Throws<InvalidOptionException>(() => options.Temperature = float.NaN).ParamName);
        Assert.Equal("Temperature", Assert.Throws<InvalidOptionException>(() => options.Temperature = float.PositiveInfinity).ParamName);
        Assert.Equal("TopP", Assert.Throws<InvalidOptionException>(() => options.TopP = 0).ParamName);
        Assert.Equal("TopP", Assert.Throws<InvalidOptionException>(() => options.TopP = 1.01f).ParamName);
        Assert.Equal("TopP", Assert.Throws<InvalidOptionException>(() => options.TopP = float.NaN).ParamName);
        Assert.Equal("TopK", Assert.Throws<InvalidOptionException>(() => options.TopK = -1).ParamName);
        Assert.Equal("MaxNewTokens", Assert.Throws<InvalidOptionException>(() => options.MaxNewTokens = 0).ParamName);
        var load = new LanguageModelOptions();
        Assert.Equal("DeviceId", Assert.Throws<InvalidOptionException>(() => load.DeviceId = -1).ParamName);
        Assert.Equal("IntraOpThreadCount", Assert.Throws<InvalidOptionException>(() => load.IntraOpThreadCount = -2).ParamName);
    }

    [Fact]
    public void AutoFallsBackToCpuAndExplicitCudaFailsLoudlyWithoutAGpu()
    {
        var logged = new List<(Microsoft.Extensions.Logging.LogLevel Level, string Message)>();
        using var factory = Microsoft.Extensions.Logging.LoggerFactory.Create(b => b.SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Trace)
            .AddProvider(new ListLoggerProvider(logged)));
        using var model = LanguageModel.Load(TestPaths.RepoModel(Model), new LanguageModelOptions { LoggerFactory = factory });
        if (model.Info.ExecutionProvider == ExecutionProvider.Cuda)
        {
            return; // a machine with a usable GPU: nothing to fall back from
        }

        Assert.Equal(ExecutionProvider.Cpu, model.Info.ExecutionProvider);
        // Auto on a CPU-only machine is the ordinary case: the reason is kept for --verbose readers at Debug, never shown by default.
        Assert.Contains(logged, l => l.Level == Microsoft.Extensions.Logging.LogLevel.Debug && l.Message.StartsWith("CUDA is not usable", StringComparison.Ordinal));
        Assert.DoesNotContain(logged, l => l.Level >= Microsoft.Extensions.Logging.LogLevel.Information && l.Message.Contains("CUDA", StringComparison.Ordinal));
        var e = Assert.Throws<ExecutionProviderUnavailableException>(() =>
            LanguageModel.Load(TestPaths.RepoModel(Model), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cuda }));
        Assert.Contains("CUDA", e.Message);
        Assert.Contains("CUDA 12.x and cuDNN 9.x", e.Message); // asked for explicitly: what to install
    }

    internal sealed class ListLoggerProvider(List<(Microsoft.Extensions.Logging.LogLevel Level, string Message)> entries)
        : Microsoft.Extensions.Logging.ILoggerProvider, Microsoft.Extensions.Logging.ILogger
    {
        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter)
        {
            lock (entries) entries.Add((logLevel, formatter(state, exception)));
        }

        public void Dispose()
        {
        }
    }
}
