using OnnxLM.Chat;
using OnnxLM.ModelBuilder;
using OnnxLM.Sampling;

namespace OnnxLM.Tests;

/// <summary>
/// Speculative decoding gives the tokens plain decoding gives: greedy token for token (ids, text, log-probs, finish
/// reason), sampling the same sequence for the same seed; the session is left as plain decoding leaves it.
/// </summary>
public sealed class SpeculativeDecodingTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });

    /// <summary>A Revelation passage, then the start of it again: the continuation can copy the input.</summary>
    internal static string GroundedPrompt()
    {
        var text = File.ReadAllText(TestPaths.TestData("kjv/revelation.txt"));
        var passage = text[..text.IndexOf("John to the seven churches", StringComparison.Ordinal)].TrimEnd();
        return passage + "\n\n" + passage[..60];
    }

    public static TheoryData<string> Prompts => new()
    {
        GroundedPrompt(),
        "And God said, Let there be light: and there was light. And God said,",
        "In the beginning",
    };

    [Theory]
    [MemberData(nameof(Prompts))]
    public async Task SpeculativeGreedyEqualsPlainGreedy(string prompt)
    {
        var plain = await _model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 80, StopTokenIds = [] });
        var speculation = new SpeculativeDecoding();
        var fast = await _model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 80, StopTokenIds = [], Speculation = speculation });
        AssertSame(plain, fast);
        Assert.True(speculation.Counts.Verifications > 0, "no draft was checked");
    }

    /// <summary>Every cache layout (swap buffers, GPT-2's combined past, GroupQueryAttention's shared buffer, fp16) truncates rejected drafts correctly.</summary>
    [SharedModelTheory]
    [MemberData(nameof(ConformanceModels.Shared), MemberType = typeof(ConformanceModels))]
    public async Task SpeculativeGreedyEqualsPlainGreedyOnEveryConformanceModel(string name)
    {
        using var model = ConformanceModels.Load(name);
        var ids = ConformanceModels.Get(name).PromptIds;
        int[] prompt = [.. ids, .. ids, .. ids[..4]]; // the prompt once more: something to look up
        var speculation = new SpeculativeDecoding();
        var plain = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 60, StopTokenIds = [] });
        var fast = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 60, StopTokenIds = [], Speculation = speculation });
        Assert.Equal(plain.TokenIds, fast.TokenIds);
        Assert.Equal(plain.Text, fast.Text);
        for (var i = 0; i < plain.Tokens.Count; i++) Assert.Equal(plain.Tokens[i].LogProb, fast.Tokens[i].LogProb, 2);
        if (!model.Runtime.Graph.SingleTokenWithPast) Assert.True(speculation.Counts.Accepted > 0, "no draft was accepted");
    }

    /// <summary>On a GPU rejected drafts are cut from device memory; the tokens are still plain greedy's (build/gpu-check.sh runs it).</summary>
    [CudaFact]
    public async Task SpeculativeGreedyOnCudaEqualsPlainGreedyAndAcceptsDrafts()
    {
        using var cuda = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cuda });
        var prompt = cuda.Tokenizer.Encode(GroundedPrompt());
        var speculation = new SpeculativeDecoding();
        var plain = await cuda.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 80, StopTokenIds = [] });
        var fast = await cuda.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 80, StopTokenIds = [], Speculation = speculation });
        Assert.Equal(plain.TokenIds, fast.TokenIds);
        Assert.True(speculation.Counts.Accepted > 20, $"accepted {speculation.Counts.Accepted} of {speculation.Counts.Drafted}");
    }

    [Fact]
    public async Task RepetitiveTextSavesModelRuns()
    {
        var speculation = new SpeculativeDecoding();
        var options = new GenerationOptions { MaxNewTokens = 60, StopTokenIds = [], Speculation = speculation };
        var result = await _model.GenerateAsync(GroundedPrompt(), options);
        var (drafted, accepted, _) = speculation.Counts;
        Assert.Equal(60, result.TokenIds.Count);

        // After the prefill, each of the 59 later tokens costs a run unless it was an accepted draft (kjv-tiny's greedy
        // continuation here leaves the passage after a few tokens and falls into a loop, which the lookup then drafts).
        Assert.True(accepted >= 20, $"accepted {accepted} of {drafted} draft tokens: {59 - accepted} runs for 59 tokens");
    }

    [Fact]
    public async Task StopIdsStopSequencesAndPenaltiesKeepTheOutputIdentical()
    {
        var prompt = GroundedPrompt();
        var free = await _model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [] });

        // A stop id met mid-draft: the 12th greedy token (not seen earlier in the output) ends both runs there.
        var stopIndex = Enumerable.Range(8, 30).First(i => !free.TokenIds.Take(i).Contains(free.TokenIds[i]));
        GenerationOptions StopAt() => new() { MaxNewTokens = 40, StopTokenIds = [free.TokenIds[stopIndex]] };
        var stopped = await CompareAsync(prompt, StopAt);
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        Assert.Equal(stopIndex + 1, stopped.TokenIds.Count);

        // A stop sequence: text from the middle of the greedy output.
        var sequence = free.Text.Substring(free.Text.Length / 2, 6);
        GenerationOptions StopOn() { var o = new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [] }; o.StopSequences.Add(sequence); return o; }
        var cut = await CompareAsync(prompt, StopOn);
        Assert.Equal(FinishReason.Stop, cut.FinishReason);
        Assert.DoesNotContain(sequence, cut.Text);

        // History-dependent processors see the same history at every position.
        await CompareAsync(prompt, () => new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [], RepetitionPenalty = 1.3f });
        await CompareAsync(prompt, () => new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [], PresencePenalty = 0.5f, FrequencyPenalty = 0.3f, NoRepeatNGramSize = 4 });
        await CompareAsync(prompt, () => new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [], MinNewTokens = 30 });
    }

    [Fact]
    public async Task ConstraintsMirostatAndDrySeeTheSameCallsAsPlainDecoding()
    {
        var prompt = GroundedPrompt();
        // A regex the free continuation can follow for a while: words and punctuation, ending at a full stop.
        await CompareAsync(prompt, () => new GenerationOptions { MaxNewTokens = 40, Constraint = Constraints.OutputConstraint.Regex("[A-Za-z ,:;]{1,120}\\.") });
        await CompareAsync(prompt, () => new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [], Temperature = 1f, Mirostat = 2, Seed = 5 });
        await CompareAsync(prompt, () => new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [], DryMultiplier = 0.8f, Temperature = 0.9f, Seed = 11 });
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    public async Task DraftLongerThanTheTokensLeftIsCut(int maxNewTokens)
    {
        var speculation = new SpeculativeDecoding { DraftLength = 16 };
        var result = await CompareAsync(GroundedPrompt(), () => new GenerationOptions { MaxNewTokens = maxNewTokens, StopTokenIds = [] }, speculation);
        Assert.Equal(maxNewTokens, result.TokenIds.Count);
        Assert.Equal(FinishReason.Length, result.FinishReason);
    }

    [Fact]
    public void DraftLongerThanTheSessionsRoomIsCutAndTheSessionEndsAsPlainDecodingLeavesIt()
    {
        var prompt = _model.Tokenizer.Encode(GroundedPrompt());
        var options = new GenerationOptions { MaxNewTokens = 100, StopTokenIds = [] };
        var spec = new GenerationOptions { MaxNewTokens = 100, StopTokenIds = [], Speculation = new SpeculativeDecoding { DraftLength = 12 } };
        using var a = _model.CreateSession(prompt.Length + 9);
        using var b = _model.CreateSession(prompt.Length + 9);
        a.Append(prompt);
        b.Append(prompt);
        var plain = Generator.Decode(_model.Runtime, a, prompt, options, CancellationToken.None).ToList();
        var fast = Generator.Decode(_model.Runtime, b, prompt, spec, CancellationToken.None).ToList();
        Assert.Equal(plain.Select(t => t.Id), fast.Select(t => t.Id));
        Assert.Equal(9, fast.Count);
        Assert.Equal(a.Tokens.ToArray(), b.Tokens.ToArray());
        AssertClose(a.NextTokenLogits, b.NextTokenLogits);
    }

    [Fact]
    public void LeavingTheEnumerationEarlyLeavesTheSessionAtTheLastTokenHandedOut()
    {
        var prompt = _model.Tokenizer.Encode(GroundedPrompt());
        var spec = new GenerationOptions { MaxNewTokens = 60, StopTokenIds = [], Speculation = new SpeculativeDecoding() };
        using var session = _model.CreateSession(prompt.Length + 60);
        session.Append(prompt);
        var taken = Generator.Decode(_model.Runtime, session, prompt, spec, CancellationToken.None).Take(5).ToList(); // mid-batch

        // Plain decoding leaves the last handed-out token unappended, with the logits it was chosen from.
        Assert.Equal([.. prompt, .. taken.Take(4).Select(t => t.Id)], session.Tokens.ToArray());
        using var reference = _model.CreateSession(prompt.Length + 60);
        reference.Append([.. prompt, .. taken.Take(4).Select(t => t.Id)]);
        AssertClose(reference.NextTokenLogits, session.NextTokenLogits);
    }

    [Fact]
    public async Task SampledSpeculationGivesTheSameSequenceForTheSameSeed()
    {
        var prompt = GroundedPrompt();
        var speculation = new SpeculativeDecoding();
        for (var seed = 0; seed < 12; seed++)
        {
            // Top-k keeps few candidates: a checking run's logits can differ from a one-token run's in the last bits
            // (~1e-6 here), which moves a draw only when the random point falls that close to a boundary between
            // candidates; with 4,096 of them alive that happened once in 700 draws, with 40 it is ~100× rarer.
            GenerationOptions Options() => new() { MaxNewTokens = 30, StopTokenIds = [], Temperature = 0.7f, TopK = 40, Seed = seed };
            var plain = await _model.GenerateAsync(prompt, Options());
            var spec = Options();
            spec.Speculation = speculation;
            var fast = await _model.GenerateAsync(prompt, spec);
            AssertSame(plain, fast);
        }

        Assert.True(speculation.Counts.Accepted > 0, "no draft was accepted");
    }

    /// <summary>
    /// The acceptance rule with a point-mass draft, checked on a hand-built distribution: drawing t from p and keeping the
    /// draft d when t = d accepts with probability p(d), and a rejection yields the residual p without d, renormalised —
    /// min(1, p/q) and norm(max(0, p − q)) for q = δ_d. Together: the output is distributed as p.
    /// </summary>
    [Fact]
    public void PointMassAcceptanceRuleKeepsTheTargetDistribution()
    {
        float[] logits = [1.5f, 0.5f, 0.0f, -0.5f, -1.0f];
        var p = logits.Select(l => Math.Exp(l)).ToArray();
        var z = p.Sum();
        p = p.Select(v => v / z).ToArray();
        const int draft = 1;
        const int draws = 40000;
        var pipeline = SamplingPipeline.Create(new GenerationOptions { Temperature = 1f }, [], null);
        var context = new SamplingContext(new Random(20261202), 0);
        var accepted = 0;
        var residual = new int[logits.Length];
        for (var n = 0; n < draws; n++)
        {
            var t = pipeline.Choose((float[])logits.Clone(), context);
            if (t == draft) accepted++;
            else residual[t]++;
        }

        var sigma = Math.Sqrt(p[draft] * (1 - p[draft]) / draws);
        Assert.InRange((double)accepted / draws, p[draft] - (4 * sigma), p[draft] + (4 * sigma));
        Assert.Equal(0, residual[draft]);
        var rejected = draws - accepted;
        double chi2 = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            if (i == draft) continue;
            var expected = p[i] / (1 - p[draft]) * rejected;
            chi2 += (residual[i] - expected) * (residual[i] - expected) / expected;
        }

        Assert.True(chi2 < 18.47, $"chi-square {chi2:F2} with 3 degrees of freedom (p = 0.001 critical value 16.27 at 3 dof; 18.47 at 4)");
    }

    [Fact]
    public async Task CancellationStopsSpeculativeGenerationAndTheModelStaysUsable()
    {
        using var cts = new CancellationTokenSource();
        var options = new GenerationOptions { MaxNewTokens = 80, StopTokenIds = [], Speculation = new SpeculativeDecoding() };
        var seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in _model.GenerateStreamingAsync(GroundedPrompt(), options, cts.Token))
            {
                if (++seen == 3) await cts.CancelAsync();
            }
        });
        Assert.Equal(3, seen);
        await CompareAsync(GroundedPrompt(), () => new GenerationOptions { MaxNewTokens = 20, StopTokenIds = [] });
    }

    [Fact]
    public async Task TheModelAsItsOwnDraftAcceptsEveryDraftAndMatchesGreedy()
    {
        using var draft = LanguageModel.Load(TestPaths.RepoModel("kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        var speculation = new SpeculativeDecoding { DraftModel = draft, DraftLength = 4 };
        await CompareAsync("And the LORD said unto Moses,", () => new GenerationOptions { MaxNewTokens = 40, StopTokenIds = [] }, speculation);
        var (drafted, accepted, _) = speculation.Counts;
        Assert.True(drafted > 0);
        Assert.Equal(drafted, accepted);
    }

    [Fact]
    public async Task AQuantizedDraftModelKeepsGreedyAndSampledOutputIdentical()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"onnxlm-draft-{Guid.NewGuid():N}");
        try
        {
            DecoderModelBuilder.Convert(TestPaths.RepoModel("kjv-tiny"), folder,
                new ModelBuilderOptions { ContextLength = 256, Quantization = WeightQuantization.Parse("int4") });
            using var draft = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
            var speculation = new SpeculativeDecoding { DraftModel = draft, DraftLength = 5 };
            await CompareAsync("And the LORD said unto Moses,", () => new GenerationOptions { MaxNewTokens = 50, StopTokenIds = [] }, speculation);
            await CompareAsync(GroundedPrompt(), () => new GenerationOptions { MaxNewTokens = 50, StopTokenIds = [], Temperature = 0.8f, Seed = 7 }, speculation);
            var (drafted, accepted, _) = speculation.Counts;
            Assert.True(accepted > 0 && accepted < drafted, $"accepted {accepted} of {drafted}: a different model should agree often but not always");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [SharedModelFact("tiny-gpt2-fp32")]
    public async Task ADraftModelWithAnotherVocabularyIsRejectedNamingTheMismatch()
    {
        using var other = LanguageModel.Load(TestPaths.SharedModel("tiny-gpt2-fp32"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        var options = new GenerationOptions { Speculation = new SpeculativeDecoding { DraftModel = other } };
        var error = await Assert.ThrowsAsync<InvalidOptionException>(() => _model.GenerateAsync("In the beginning", options));
        Assert.Contains("vocabulary of 1000", error.Message);
        Assert.Contains("4096", error.Message);
        Assert.Equal("DraftModel", error.ParamName);
    }

    [Fact]
    public async Task CliGenerateSpeculativePrintsThePlainContinuation()
    {
        var prompt = GroundedPrompt();
        async Task<(int Code, string Output, string Error)> Run(params string[] args)
        {
            using var output = new StringWriter();
            using var error = new StringWriter();
            var code = await Cli.CliApp.RunAsync(["generate", "--model", TestPaths.RepoModel("kjv-tiny"), "-t", "0", "-n", "30", .. args, prompt], output, error, new StringReader(""));
            return (code, output.ToString(), error.ToString());
        }

        var plain = await Run();
        var fast = await Run("--speculative");
        var drafted = await Run("--draft-model", TestPaths.RepoModel("kjv-tiny"));
        Assert.True(plain.Code == 0, plain.Error);
        Assert.True(fast.Code == 0, fast.Error);
        Assert.True(drafted.Code == 0, drafted.Error);
        Assert.Equal(plain.Output, fast.Output);
        Assert.Equal(plain.Output, drafted.Output);
        Assert.StartsWith(prompt, fast.Output);
    }

    [Fact]
    public async Task AChatReusingItsCacheAfterSpeculativeTurnsRepliesAsWithout()
    {
        async Task<(string[] Replies, int Reused)> Converse(SpeculativeDecoding? speculation)
        {
            using var chat = _model.CreateChat(new ChatSessionOptions { SystemPrompt = GroundedPrompt() });
            var options = new GenerationOptions { MaxNewTokens = 25, Speculation = speculation };
            var a = await chat.SendAsync("And I saw", options);
            var b = await chat.SendAsync("And he said", options);
            return ([a.Text, b.Text], b.ReusedTokenCount);
        }

        var plain = await Converse(null);
        var speculation = new SpeculativeDecoding();
        var fast = await Converse(speculation);
        Assert.True(speculation.Counts.Accepted > 0, "no draft was accepted");
        Assert.Equal(plain.Replies, fast.Replies);
        Assert.Equal(plain.Reused, fast.Reused); // the second turn finds the cache as plain decoding leaves it
    }

    [Fact]
    public async Task SettingsValidate()
    {
        Assert.Throws<InvalidOptionException>(() => new SpeculativeDecoding { DraftLength = 0 });
        Assert.Throws<InvalidOptionException>(() => new SpeculativeDecoding { MaxNGramSize = 0 });
        var options = new GenerationOptions { Speculation = new SpeculativeDecoding { MinNGramSize = 4, MaxNGramSize = 2 } };
        var error = await Assert.ThrowsAsync<InvalidOptionException>(() => _model.GenerateAsync("In the beginning", options));
        Assert.Contains("MinNGramSize (4) is more than MaxNGramSize (2)", error.Message);
        Assert.Null(new GenerationOptions().Speculation); // off by default
    }

    [Fact]
    public void PromptLookupProposesWhatFollowedTheLatestLongestMatch()
    {
        using var drafter = new PromptLookupDrafter(maxNGram: 3, minNGram: 1);
        Span<int> draft = stackalloc int[4];
        // "7 8 9" occurs at 1 (followed by 1 2) and at 6 (followed by 5 5 5): the latest wins.
        int[] history = [0, 7, 8, 9, 1, 2, 7, 8, 9, 5, 5, 5, 7, 8, 9];
        Assert.Equal(4, drafter.Draft(history, draft, CancellationToken.None));
        Assert.Equal([5, 5, 5, 7], draft.ToArray());
        // Only a 1-gram matches: what followed the latest 3, up to the end of the sequence.
        Assert.Equal(3, drafter.Draft([3, 4, 6, 3], draft, CancellationToken.None));
        Assert.Equal([4, 6, 3], draft[..3].ToArray());
        Assert.Equal(0, drafter.Draft([1, 2, 3], draft, CancellationToken.None));
        using var strict = new PromptLookupDrafter(maxNGram: 3, minNGram: 2);
        Assert.Equal(0, strict.Draft([3, 4, 6, 3], draft, CancellationToken.None));
    }

    private async Task<GenerationResult> CompareAsync(string prompt, Func<GenerationOptions> options, SpeculativeDecoding? speculation = null)
    {
        var plain = await _model.GenerateAsync(prompt, options());
        var spec = options();
        spec.Speculation = speculation ?? new SpeculativeDecoding();
        var fast = await _model.GenerateAsync(prompt, spec);
        AssertSame(plain, fast);
        return fast;
    }

    private static void AssertSame(GenerationResult plain, GenerationResult fast)
    {
        Assert.Equal(plain.TokenIds, fast.TokenIds);
        Assert.Equal(plain.Text, fast.Text);
        Assert.Equal(plain.FinishReason, fast.FinishReason);
        Assert.Equal(plain.Tokens.Count, fast.Tokens.Count);
        for (var i = 0; i < plain.Tokens.Count; i++)
        {
            Assert.Equal(plain.Tokens[i].Text, fast.Tokens[i].Text);
            Assert.Equal(plain.Tokens[i].FinishReason, fast.Tokens[i].FinishReason);
            Assert.Equal(plain.Tokens[i].LogProb, fast.Tokens[i].LogProb, 3);
        }
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        var max = 0f;
        for (var i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        Assert.True(max < 1e-3f, $"max abs logit difference {max}");
    }

    public void Dispose() => _model.Dispose();
}
