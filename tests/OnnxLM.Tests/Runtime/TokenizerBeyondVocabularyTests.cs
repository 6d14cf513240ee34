using Microsoft.Extensions.Logging;

namespace OnnxLM.Tests;

/// <summary>A tokenizer with ids past the model's vocabulary (tiny-gpt2's export: 50,295 tokens for a 1,000-row head) is reported at load, not at generation time.</summary>
public sealed class TokenizerBeyondVocabularyTests
{
    private sealed class Capture : ILoggerProvider, ILogger
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((logLevel, formatter(state, exception)));

        public void Dispose()
        {
        }
    }

    [SharedModelFact("tiny-gpt2-fp32")]
    public void TheLoadWarnsAndInfoSaysSo()
    {
        var capture = new Capture();
        using var factory = LoggerFactory.Create(b => b.AddProvider(capture));
        using var model = LanguageModel.Load(TestPaths.SharedModel("tiny-gpt2-fp32"), new LanguageModelOptions { LoggerFactory = factory });
        Assert.Equal(model.Tokenizer.VocabularySize, model.Info.TokenizerVocabularySize);
        Assert.True(model.Info.TokenizerVocabularySize > model.Info.VocabularySize);
        var warning = Assert.Single(capture.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("never generated or scored", StringComparison.Ordinal));
        Assert.Contains($"ids {model.Info.VocabularySize}..{model.Tokenizer.VocabularySize - 1}", warning.Message);

        using var kjv = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"));
        Assert.Null(kjv.Info.TokenizerVocabularySize);
    }
}
