using System.Diagnostics;
using System.Text.Json.Nodes;

namespace OnnxLM.Tests;

/// <summary>
/// Hostile tokenizer.json files (an outside adversarial run found these): regexes that backtrack catastrophically,
/// normalizers that grow the text without bound, and encodes that must stop when cancelled. Each case runs under a
/// deadline, so without the limits it fails after that deadline instead of hanging the run.
/// </summary>
public sealed class TokenizerLimitTests : IDisposable
{
    private const int Unknown = 4;
    private static readonly TimeSpan RegexDeadline = TimeSpan.FromSeconds(10);
    private readonly string _temp = Directory.CreateTempSubdirectory("onnxlm-limits-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    /// <summary>
    /// Patterns without lookaround run on the non-backtracking engine: the exponential cases are linear there and give
    /// what the backtracking engine gives (no match here, so the whole text is one unknown word).
    /// </summary>
    [Theory]
    [InlineData("split", "(a+)+$", "b")]     // > 60 s before
    [InlineData("split", "(a|aa)+b", "c")]   // 32 s before
    [InlineData("replace", "(a*)*c", "b")]   // > 60 s before
    public async Task BacktrackingPronePatternsWithoutLookaroundTokenizeQuickly(string stage, string pattern, string last)
    {
        var tokenizer = Load(stage == "split" ? SplitOn(pattern) : Normalizer(Replace(pattern, "x")));
        var ids = await Run(() => tokenizer.Encode(new string('a', 40) + last, addSpecialTokens: false), RegexDeadline);
        Assert.Equal([Unknown], ids);
    }

    [Fact]
    public void MatchesStayThoseOfTheBacktrackingEngine()
    {
        // Priority of alternatives and greediness decide these splits; the non-backtracking engine must agree.
        var tokenizer = Load(SplitOn("a|aa|b+?|c*"));
        Assert.Equal([0, 0, 0, 1, 1, Unknown], tokenizer.Encode("aaabbcc", addSpecialTokens: false));
        Assert.Equal(["a", "a", "a", "b", "b", "cc"], tokenizer.EncodeToTokens("aaabbcc", false).Select(t => "aaabbcc".Substring(t.Start, t.Length)));
    }

    /// <summary>A pattern with lookaround needs the backtracking engine: it runs with a match timeout and fails typed.</summary>
    [Fact]
    public async Task BacktrackingPatternWithLookaroundTimesOutWithATypedError()
    {
        var tokenizer = Load(SplitOn("(a|aa)+(?=b)"));
        var watch = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<TokenizationLimitException>(() => Run(() => tokenizer.Encode(new string('a', 40) + "c", false), RegexDeadline));
        Assert.True(watch.Elapsed < RegexDeadline, $"took {watch.Elapsed}");
        Assert.Contains("pre_tokenizer.pattern.Regex", e.Message);
        Assert.Contains("(a|aa)+(?=b)", e.Message);
        Assert.Equal(e.Stage, e.Stage.Trim());

        // Real patterns with lookaround (GPT-2's \s+(?!\S)) stay fast on long hostile runs of spaces.
        var gpt2 = Load(SplitOn(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"));
        Assert.Single(await Run(() => gpt2.EncodeToTokens(new string(' ', 200_000) + "a", false), RegexDeadline), t => t.Length == 199_999);
    }

    /// <summary>Five chained Replace normalizers of "a" → 1,000 "a"s made 8 characters into 8·10¹⁵ and ran out of memory.</summary>
    [Fact]
    public async Task ChainedGrowingNormalizersStopAtTheGrowthLimit()
    {
        var steps = new JsonArray();
        for (var i = 0; i < 5; i++) steps.Add(Replace("a", new string('a', 1000), literal: true));
        var tokenizer = Load(Normalizer(new JsonObject { ["type"] = "Sequence", ["normalizers"] = steps }));
        var e = await Assert.ThrowsAsync<TokenizationLimitException>(() => Run(() => tokenizer.Encode("aaaaaaaa", false), TimeSpan.FromSeconds(1)));
        Assert.Equal("normalizer", e.Stage);
        Assert.Contains($"{8 * TextTokenizer.MaxGrowthFactor + TextTokenizer.MaxGrowthSlack:N0}", e.Message);

        // One step on one "a" stays within the limit (999 ≤ 64 + 4,096): the 1,000 "a"s are one unknown word.
        var one = Load(Normalizer(Replace("a", new string('a', 1000), literal: true)));
        Assert.Equal([Unknown], one.Encode("a", false));
    }

    [Fact]
    public async Task ChainedByteLevelPreTokenizersStopAtTheGrowthLimit()
    {
        // Each ByteLevel step writes a non-ASCII character as two: twelve of them grow "é" 4,096-fold.
        var steps = new JsonArray();
        for (var i = 0; i < 12; i++) steps.Add(new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false });
        var tokenizer = Load(new JsonObject { ["pre_tokenizer"] = new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = steps } });
        var e = await Assert.ThrowsAsync<TokenizationLimitException>(() => Run(() => tokenizer.Encode(new string('é', 1000), false), TimeSpan.FromSeconds(1)));
        Assert.Equal("pre_tokenizer", e.Stage);
    }

    [Fact]
    public async Task GrowingNormalizerAppliedToAddedTokensAtLoadIsAFormatError()
    {
        var steps = new JsonArray();
        for (var i = 0; i < 5; i++) steps.Add(Replace("a", new string('a', 1000), literal: true));
        var root = Normalizer(new JsonObject { ["type"] = "Sequence", ["normalizers"] = steps });
        root["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 5, ["content"] = "aa", ["normalized"] = true });
        var e = await Assert.ThrowsAsync<ModelFormatException>(() => Run(() => Load(root), TimeSpan.FromSeconds(1)));
        Assert.Contains("added tokens", e.Message);
    }

    [SkippableFact]
    public void EncodingObservesCancellation()
    {
        var path = TokenizerFamilies.Locate("hf-llama3_1", out var reason);
        Skip.If(path is null, reason);
        var tokenizer = TextTokenizer.FromFile(path);
        var text = string.Concat(Enumerable.Repeat("In the beginning God created the heaven and the earth. ", 40_000));

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => tokenizer.Encode(text, cancellationToken: cancelled.Token));
        Assert.Throws<OperationCanceledException>(() => tokenizer.EncodeToTokens(text, cancellationToken: cancelled.Token));
        Assert.Throws<OperationCanceledException>(() => tokenizer.CountTokens(text, cancellationToken: cancelled.Token));

        // Cancelled part-way: the encode stops long before it would have finished. The whole encode is timed warm, on the
        // same call; on a loaded machine a run can still finish inside its deadline, so the deadline halves until a run is
        // cut short (an encode that never looked at the token would run the deadline down to nothing and fail).
        var whole = TimeSpan.MaxValue;
        var count = 0;
        for (var i = 0; i < 2; i++)
        {
            var run = Stopwatch.StartNew();
            count = tokenizer.EncodeToTokens(text).Count;
            whole = TimeSpan.FromTicks(Math.Min(whole.Ticks, run.Elapsed.Ticks));
        }

        Assert.True(count > 400_000);
        for (var deadline = whole / 10; ; deadline /= 2)
        {
            Assert.True(deadline > TimeSpan.FromMilliseconds(1), $"no encode was cancelled, down to a deadline of {deadline} (whole encode {whole})");
            using var later = new CancellationTokenSource(deadline);
            var watch = Stopwatch.StartNew();
            try
            {
                tokenizer.EncodeToTokens(text, cancellationToken: later.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.True(watch.Elapsed < whole * 3, $"cancelled after {watch.Elapsed}, whole encode {whole}");
                break;
            }
        }
    }

    private static async Task<T> Run<T>(Func<T> encode, TimeSpan deadline)
    {
        // The deadline turns a hang into a failure; the runaway thread itself cannot be stopped.
        var task = Task.Factory.StartNew(encode, TaskCreationOptions.LongRunning);
        try
        {
            return await task.WaitAsync(deadline);
        }
        catch (TimeoutException)
        {
            throw new Xunit.Sdk.XunitException($"the encode ran past {deadline.TotalSeconds} s");
        }
    }

    private TextTokenizer Load(JsonObject root)
    {
        root["model"] ??= new JsonObject
        {
            ["type"] = "WordLevel",
            ["vocab"] = new JsonObject { ["a"] = 0, ["b"] = 1, ["c"] = 2, ["x"] = 3, ["[UNK]"] = Unknown },
            ["unk_token"] = "[UNK]",
        };
        var file = Path.Combine(_temp, $"{Guid.NewGuid():N}.json");
        File.WriteAllText(file, root.ToJsonString());
        return TextTokenizer.FromFile(file);
    }

    private static JsonObject SplitOn(string regex) => new()
    {
        ["pre_tokenizer"] = new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = regex }, ["behavior"] = "Isolated", ["invert"] = false },
    };

    private static JsonObject Normalizer(JsonObject normalizer) => new() { ["normalizer"] = normalizer };

    private static JsonObject Replace(string pattern, string content, bool literal = false) => new()
    {
        ["type"] = "Replace", ["pattern"] = new JsonObject { [literal ? "String" : "Regex"] = pattern }, ["content"] = content,
    };
}
