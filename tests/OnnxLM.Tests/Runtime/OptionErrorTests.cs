using OnnxLM.Chat;
using OnnxLM.Constraints;

namespace OnnxLM.Tests;

/// <summary>
/// Every options class refuses a bad value with an <see cref="InvalidOptionException"/> that names the option as its
/// property is spelled and gives the reason without ArgumentException's parameter suffix; values at the edges pass.
/// </summary>
public sealed class OptionErrorTests
{
    /// <summary>The option, a setter given a bad value, and the reason written out by hand.</summary>
    public static TheoryData<string, Action, string> Refusals => new()
    {
        { "MaxNewTokens", () => _ = new GenerationOptions { MaxNewTokens = 0 }, "MaxNewTokens must be at least 1; got 0." },
        { "Temperature", () => _ = new GenerationOptions { Temperature = -0.5f }, "Temperature must be a finite number ≥ 0 (0 = greedy); got -0.5." },
        { "Temperature", () => _ = new GenerationOptions { Temperature = float.NaN }, "Temperature must be a finite number ≥ 0 (0 = greedy); got NaN." },
        { "TopP", () => _ = new GenerationOptions { TopP = 1.5f }, "TopP must be in (0, 1]; got 1.5." },
        { "TopP", () => _ = new GenerationOptions { TopP = 0 }, "TopP must be in (0, 1]; got 0." },
        { "MinP", () => _ = new GenerationOptions { MinP = -0.25f }, "MinP must be in [0, 1]; got -0.25." },
        { "EpsilonCutoff", () => _ = new GenerationOptions { EpsilonCutoff = 1 }, "EpsilonCutoff must be in [0, 1); got 1." },
        { "XtcThreshold", () => _ = new GenerationOptions { XtcThreshold = 0.75f }, "XtcThreshold must be in (0, 0.5]; got 0.75." },
        { "TopNSigma", () => _ = new GenerationOptions { TopNSigma = -1 }, "TopNSigma must be a finite number ≥ 0; got -1." },
        { "RepetitionPenalty", () => _ = new GenerationOptions { RepetitionPenalty = 0 }, "RepetitionPenalty must be a finite number > 0; got 0." },
        { "PresencePenalty", () => _ = new GenerationOptions { PresencePenalty = float.PositiveInfinity }, "PresencePenalty must be a finite number; got Infinity." },
        { "DryBase", () => _ = new GenerationOptions { DryBase = 1 }, "DryBase must be a finite number > 1; got 1." },
        { "Mirostat", () => _ = new GenerationOptions { Mirostat = 3 }, "Mirostat must be 0, 1 or 2; got 3." },
        { "MaxTime", () => _ = new GenerationOptions { MaxTime = TimeSpan.Zero }, "MaxTime must be positive; got 00:00:00." },
        { "SamplerOrder", () => _ = new GenerationOptions { SamplerOrder = [Sampling.SamplerStage.TopK, Sampling.SamplerStage.TopK] }, "SamplerOrder lists a stage twice." },
        { "NumBeams", () => _ = new BeamSearchOptions { NumBeams = 65 }, "NumBeams must be between 1 and 64; got 65." },
        { "LengthPenalty", () => _ = new BeamSearchOptions { LengthPenalty = float.NaN }, "LengthPenalty must be a finite number; got NaN." },
        { "DraftLength", () => _ = new SpeculativeDecoding { DraftLength = 0 }, "DraftLength must be at least 1; got 0." },
        { "WindowLength", () => _ = new PerplexityOptions { WindowLength = 1 }, "WindowLength must be at least 2; got 1." },
        { "Stride", () => _ = new PerplexityOptions { Stride = 0 }, "Stride must be at least 1; got 0." },
        { "TopAlternatives", () => _ = new ScoreOptions { TopAlternatives = 101 }, "TopAlternatives must be between 0 and 100; got 101." },
        { "MaxBatchSize", () => _ = new LanguageModelOptions { MaxBatchSize = 257 }, "MaxBatchSize must be between 1 and 256; got 257." },
        { "DeviceId", () => _ = new LanguageModelOptions { DeviceId = -1 }, "DeviceId must be at least 0; got -1." },
        { "ReservedReplyTokens", () => _ = new ChatSessionOptions { ReservedReplyTokens = 0 }, "ReservedReplyTokens must be at least 1; got 0." },
        { "MaxSteps", () => _ = new TemplateOptions { MaxSteps = 0 }, "MaxSteps must be at least 1; got 0." },
        { "MaxDepth", () => _ = new TemplateOptions { MaxDepth = 10_001 }, "MaxDepth must be between 1 and 10000; got 10001." },
        { "MaxRenderTime", () => _ = new TemplateOptions { MaxRenderTime = TimeSpan.FromSeconds(-1) }, "MaxRenderTime must be positive, or Timeout.InfiniteTimeSpan for no limit; got -00:00:01." },
        { "MaxStates", () => _ = new ConstraintLimits { MaxStates = 0 }, "MaxStates must be at least 1; got 0." },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void EachSetterRefusesNamingTheOptionAndItsReason(string option, Action set, string reason)
    {
        var e = Assert.Throws<InvalidOptionException>(set);
        Assert.Equal(option, e.OptionName);
        Assert.Equal(option, e.ParamName);
        Assert.Equal(reason, e.Reason);
        Assert.Equal($"{reason} (Parameter '{option}')", e.Message); // what ArgumentException shows, and Reason leaves out
    }

    [Fact]
    public void ValuesAtTheEdgesAreAcceptedAndKept()
    {
        var options = new GenerationOptions
        {
            Temperature = 0, TopP = 1, MinP = 1, TypicalP = 1, EpsilonCutoff = 0, XtcThreshold = 0.5f, XtcProbability = 1,
            TopNSigma = 0, DryBase = 1.0001f, Mirostat = 2, MaxNewTokens = 1, MinNewTokens = 0, PenaltyWindow = int.MaxValue,
        };
        Assert.Equal((0f, 1f, 1f, 1f, 0f, 0.5f, 1f), (options.Temperature, options.TopP, options.MinP, options.TypicalP, options.EpsilonCutoff, options.XtcThreshold, options.XtcProbability));
        Assert.Equal((0f, 1.0001f, 2, 1, int.MaxValue), (options.TopNSigma!.Value, options.DryBase, options.Mirostat, options.MaxNewTokens, options.PenaltyWindow));
        options.TopNSigma = null;
        options.MaxTime = null;
        Assert.Null(options.TopNSigma);
        Assert.Null(options.MaxTime);
        Assert.Equal(64, new BeamSearchOptions { NumBeams = 64 }.NumBeams);
        Assert.Equal(256, new LanguageModelOptions { MaxBatchSize = 256 }.MaxBatchSize);
        Assert.Equal(100, new ScoreOptions { TopAlternatives = 100 }.TopAlternatives);
        Assert.Null(new PerplexityOptions { WindowLength = null, Stride = null }.WindowLength);
        Assert.Equal(Timeout.InfiniteTimeSpan, new TemplateOptions { MaxRenderTime = Timeout.InfiniteTimeSpan }.MaxRenderTime);
    }

    [Fact]
    public void TheDefaultsAreTheDocumentedOnes()
    {
        var g = new GenerationOptions();
        Assert.Equal((128, 0f, 0, 1f, 0f, 1f), (g.MaxNewTokens, g.Temperature, g.TopK, g.TopP, g.MinP, g.TypicalP));
        Assert.Equal((1f, 0f, 0f, 64, 0, 0), (g.RepetitionPenalty, g.PresencePenalty, g.FrequencyPenalty, g.PenaltyWindow, g.NoRepeatNGramSize, g.MinNewTokens));
        Assert.Equal((0f, 1.75f, 2, 0f, 0.1f), (g.DryMultiplier, g.DryBase, g.DryAllowedLength, g.XtcProbability, g.XtcThreshold));
        Assert.Equal((0, 5f, 0.1f), (g.Mirostat, g.MirostatTau, g.MirostatEta));
        Assert.Null(g.TopNSigma);
        Assert.Same(GenerationOptions.HuggingFaceSamplerOrder, g.SamplerOrder);
        var beam = new BeamSearchOptions();
        Assert.Equal((4, 64, 1f), (beam.NumBeams, beam.MaxNewTokens, beam.LengthPenalty));
        var speculation = new SpeculativeDecoding();
        Assert.Equal((10, 3, 1), (speculation.DraftLength, speculation.MaxNGramSize, speculation.MinNGramSize));
        var template = new TemplateOptions();
        Assert.Equal((4 * 1024 * 1024, 1_000_000L, 256, 64, TimeSpan.FromSeconds(10)), (template.MaxOutputLength, template.MaxSteps, template.MaxDepth, template.MaxCallDepth, template.MaxRenderTime));
        Assert.Same(TimeProvider.System, template.Clock);
        var load = new LanguageModelOptions();
        Assert.Equal((0, 0, LanguageModelOptions.DefaultMaxBatchSize), (load.DeviceId, load.IntraOpThreadCount, load.MaxBatchSize));
        Assert.Equal(1, new ChatSessionOptions().ReservedReplyTokens);
        Assert.Equal(0, new ScoreOptions().TopAlternatives);
    }

    [Theory]
    [InlineData("(", "pattern", "Regular expression '(' at ")]
    [InlineData("a{3,1}", "pattern", "Regular expression 'a{3,1}'")]
    public void ABadRegexNamesItsPatternParameter(string pattern, string option, string reasonStart)
    {
        var e = Assert.Throws<InvalidOptionException>(() => OutputConstraint.Regex(pattern));
        Assert.Equal(option, e.OptionName);
        Assert.StartsWith(reasonStart, e.Reason);
        Assert.Equal($"{e.Reason} (Parameter '{option}')", e.Message);
    }

    [Fact]
    public void ConstraintErrorsAreOptionErrors()
    {
        var grammar = Assert.Throws<InvalidOptionException>(() => OutputConstraint.Grammar("root ::= x"));
        Assert.Equal("grammar", grammar.OptionName);
        Assert.Contains("'x' is used but never defined", grammar.Reason);
        var choice = Assert.Throws<InvalidOptionException>(() => OutputConstraint.Choice([""]));
        Assert.Equal(("choices", "Choice needs at least one non-empty string."), (choice.OptionName, choice.Reason));
        var tooLarge = Assert.Throws<ConstraintTooLargeException>(() => OutputConstraint.Regex("a{1000}", new ConstraintLimits { MaxAutomatonSize = 100 }));
        Assert.IsAssignableFrom<InvalidOptionException>(tooLarge);
        Assert.Equal("pattern", tooLarge.OptionName);
        Assert.EndsWith("pass a ConstraintLimits with a larger MaxAutomatonSize.", tooLarge.Reason);
    }

    [Fact]
    public async Task ChecksAtTheStartOfAGenerationNameTheOption()
    {
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var vocab = model.Info.VocabularySize;
        var minOverMax = await Assert.ThrowsAsync<InvalidOptionException>(() => model.GenerateAsync("In the beginning", new GenerationOptions { MaxNewTokens = 2, MinNewTokens = 3 }));
        Assert.Equal("MinNewTokens", minOverMax.OptionName);
        Assert.Equal("GenerationOptions.MinNewTokens (3) is more than MaxNewTokens (2); the end token could never be allowed.", minOverMax.Reason);
        var bias = new GenerationOptions { MaxNewTokens = 2 };
        bias.LogitBias[vocab] = 1;
        var outside = await Assert.ThrowsAsync<InvalidOptionException>(() => model.GenerateAsync("In the beginning", bias));
        Assert.Equal("LogitBias", outside.OptionName);
        Assert.Equal($"GenerationOptions.LogitBias names token {vocab}, outside the model's vocabulary of {vocab} (ids 0–{vocab - 1}).", outside.Reason);
        var lookup = new GenerationOptions { Speculation = new SpeculativeDecoding { MinNGramSize = 3, MaxNGramSize = 2 } };
        var bounds = Assert.Throws<InvalidOptionException>(() => lookup.Speculation.Validate(model)); // public: a caller can check before any work
        Assert.Equal("MinNGramSize", bounds.OptionName);
    }

    [Fact]
    public void ModelInfoDescribesTheGraphAsOnnxRuntimeDoes()
    {
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(model.Info.GraphPath); // an independent look at the same file
        Assert.Equal(session.InputMetadata.Keys, model.Info.GraphInputs.Keys);
        Assert.Equal(session.OutputMetadata.Keys, model.Info.GraphOutputs.Keys);
        foreach (var (name, expected) in session.InputMetadata)
        {
            Assert.Equal(expected.ElementDataType, model.Info.GraphInputs[name].ElementDataType);
            Assert.Equal(expected.Dimensions, model.Info.GraphInputs[name].Dimensions);
            Assert.Equal(expected.SymbolicDimensions, model.Info.GraphInputs[name].SymbolicDimensions);
        }

        Assert.Equal(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int64, model.Info.GraphInputs["input_ids"].ElementDataType);
        Assert.Equal(model.Info.VocabularySize, model.Info.GraphOutputs["logits"].Dimensions[^1]);
        Assert.Equal(1 + 2 * model.Info.LayerCount, model.Info.GraphOutputs.Count); // logits, then a key and a value per layer
    }
}
