using OnnxLM.Cli;

namespace OnnxLM.Tests;

/// <summary>The onnxlm command line on the repository model: same results as the library, clear usage errors.</summary>
public sealed class CliTests
{
    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args) => await RunWithInputAsync("", args);

    private static async Task<(int Code, string Output, string Error)> RunWithInputAsync(string input, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.RunAsync(args, output, error, new StringReader(input));
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task ChatRepliesToEachLineAsAChatSessionDoes()
    {
        var (code, output, error) = await RunWithInputAsync("In the beginning\n\n/reset\nAnd God said\nThen what?\n/exit\nnever sent\n",
            "chat", "--model", Model, "--temperature", "0", "--max-new-tokens", "8", "--system", "Scripture.");
        Assert.True(code == 0, error);
        Assert.Contains("no chat template; using the plain", error);

        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var options = new GenerationOptions { Temperature = 0, MaxNewTokens = 8 };
        var sessionOptions = new OnnxLM.Chat.ChatSessionOptions { SystemPrompt = "Scripture." };
        using var first = model.CreateChat(sessionOptions);
        var a = await first.SendAsync("In the beginning", options);
        using var second = model.CreateChat(sessionOptions); // after /reset
        var b = await second.SendAsync("And God said", options);
        var c = await second.SendAsync("Then what?", options);
        var nl = Environment.NewLine;
        Assert.Equal(a.Text + nl + b.Text + nl + c.Text + nl, output);
    }

    private static readonly string Model = ConformanceModels.Get(ConformanceModels.Repo).Path;

    [Fact]
    public async Task GreedyGenerateStreamsThePromptAndTheLibrarysContinuation()
    {
        const string prompt = "And the LORD said unto Moses,";
        var (code, output, error) = await RunAsync("generate", "--model", Model, "--temperature", "0", "--max-new-tokens", "12", prompt);
        Assert.True(code == 0, error);

        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var expected = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 12 });
        Assert.Equal(prompt + expected.Text + Environment.NewLine, output);
    }

    [Fact]
    public async Task StopStringEndsTheOutputBeforeIt()
    {
        var (code, output, _) = await RunAsync("generate", "--model", Model, "--temperature", "0", "--max-new-tokens", "60", "--stop", ",", "And God said");
        Assert.Equal(0, code);
        Assert.DoesNotContain(",", output["And God said".Length..]);
    }

    [Fact]
    public async Task PerplexityEqualsTheLibrarysRollingScore()
    {
        var file = Path.GetTempFileName();
        try
        {
            const string text = "And I saw a new heaven and a new earth: for the first heaven and the first earth were passed away.";
            File.WriteAllText(file, text + "\n\n");
            var (code, output, error) = await RunAsync("perplexity", "--model", Model, "--window", "16", file);
            Assert.True(code == 0, error);

            using var model = ConformanceModels.Load(ConformanceModels.Repo);
            var expected = await model.ScorePerplexityAsync(text, new PerplexityOptions { WindowLength = 16 });
            Assert.Contains(FormattableString.Invariant($"1 documents, {expected.TokenCount} tokens, {expected.ByteCount} bytes"), output);
            Assert.Contains(FormattableString.Invariant($"bits per byte {expected.BitsPerByte:F4}"), output);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData(1, "unknown option --bogus", "generate", "--bogus", "x")]
    [InlineData(1, "--top-k needs an integer", "generate", "--top-k", "many", "x")]
    [InlineData(1, "no prompt given", "generate")]
    [InlineData(1, "--sampler-order must be", "generate", "--sampler-order", "random", "x")]
    [InlineData(1, "unknown command 'train'", "train")]
    [InlineData(1, "does not exist", "perplexity", "no-such-file.txt")]
    [InlineData(2, "TopP", "generate", "--top-p", "1.5", "x")]
    [InlineData(2, "has neither genai_config.json", "generate", "--model", ".", "x")]
    public async Task BadArgumentsExitNonZeroNamingTheProblem(int expectedCode, string message, params string[] args)
    {
        var (code, _, error) = await RunAsync(args);
        Assert.Equal(expectedCode, code);
        Assert.Contains(message, error);
    }
}
