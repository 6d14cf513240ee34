using System.Text.Json;
using OnnxLM.Chat;
using OnnxLM.Cli;

namespace OnnxLM.Tests;

/// <summary>
/// What a person at a terminal and a script reading a pipe each get from onnxlm: chat labels, standard input without
/// its trailing line break, readable JSON, options only where they apply, command suggestions, the parameter count.
/// </summary>
public sealed class CliTerminalAndPipeTests
{
    private static async Task<(int Code, string Output, string Error)> RunAsync(string input, bool? terminal, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.RunAsync(args, output, error, new StringReader(input), terminal);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task ChatOnATerminalLabelsEachTurnAndPipedPrintsTheRepliesAlone()
    {
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var options = new GenerationOptions { Temperature = 0, MaxNewTokens = 6 };
        using var chat = model.CreateChat(new ChatSessionOptions());
        var reply = (await chat.SendAsync("In the beginning", options)).Text;

        string[] args = ["chat", "--temperature", "0", "--max-new-tokens", "6"];
        var (code, output, error) = await RunAsync("In the beginning\n", terminal: true, args);
        Assert.True(code == 0, error);
        var nl = Environment.NewLine;
        Assert.EndsWith($"you> assistant> {reply}{nl}you> ", output); // the second prompt meets the end of input
        Assert.Contains("/exit", output); // the help line before the first prompt

        var (pc, piped, pe) = await RunAsync("In the beginning\n", terminal: false, args);
        Assert.True(pc == 0, pe);
        Assert.Equal(reply + nl, piped);
        Assert.DoesNotContain("you>", pe);
    }

    [Theory]
    [InlineData("In the beginning\n", "In the beginning")]
    [InlineData("In the beginning\r\n", "In the beginning")]
    [InlineData("In the beginning\n\n", "In the beginning\n")] // one line break only: a deliberate blank line survives
    [InlineData("In the beginning", "In the beginning")]
    [InlineData("\n", "")]
    public void StandardInputLosesOneTrailingLineBreak(string read, string expected)
    {
        Assert.Equal(expected, new CliContext(TextWriter.Null, TextWriter.Null, new StringReader(read), terminal: false).ReadText("-", "prompt"));
        Assert.Equal(read, new CliContext(TextWriter.Null, TextWriter.Null, new StringReader(""), terminal: false).ReadText(read, "prompt")); // arguments stay as given
    }

    [Fact]
    public async Task EchoedPromptGeneratesAsTheWordsAlone()
    {
        const string prompt = "And God said";
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var expected = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 5, Temperature = 0 });
        var withNewline = await model.GenerateAsync(prompt + "\n", new GenerationOptions { MaxNewTokens = 5, Temperature = 0 });
        Assert.NotEqual(expected.TokenIds, withNewline.TokenIds); // the line break would change the continuation

        var (code, json, error) = await RunAsync(prompt + "\n", terminal: false, "generate", "-", "-t", "0", "-n", "5", "--json");
        Assert.True(code == 0, error);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(expected.TokenIds, doc.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("id").GetInt32()));
    }

    [Fact]
    public async Task JsonOutputEscapesOnlyWhatJsonRequires()
    {
        const string text = "<s>'a' & \"b\"";
        var (code, json, error) = await RunAsync("", terminal: false, "tokenize", "--json", "--no-special", text);
        Assert.True(code == 0, error);
        Assert.DoesNotContain("\\u003C", json, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("\\u0027", json);
        Assert.DoesNotContain("\\u0026", json);
        Assert.Contains("\"text\":\"<s>\"", json); // the tokenizer's <s> is one special token even inside text
        Assert.Contains("\\\"", json); // a quote is still escaped, as JSON requires
        var tokens = JsonDocument.Parse(json).RootElement.EnumerateArray().ToList();
        Assert.Equal(text, string.Concat(tokens.Select(t => t.GetProperty("text").GetString())));
        Assert.Equal("{\"a\":\"<\\u2028>\"}", CliContext.ToJson(new { a = "<\u2028>" })); // what breaks JavaScript is still escaped
    }

    [Fact]
    public async Task ModelOptionsAreOnlyOnTheCommandsThatLoadAModel()
    {
        foreach (var command in new[] { "convert", "train-bpe", "pull" })
        {
            var (code, help, _) = await RunAsync("", false, command, "--help");
            Assert.Equal(0, code);
            Assert.DoesNotContain("--model", help);
            Assert.DoesNotContain("--provider", help);
            Assert.DoesNotContain("GenAI hub folder", help); // the loading --variant's description
            Assert.Contains("--verbose", help);
        }

        foreach (var command in new[] { new[] { "generate" }, ["inspect"], ["serve"], ["explain", "next"] })
        {
            var (code, help, _) = await RunAsync("", false, [.. command, "--help"]);
            Assert.Equal(0, code);
            foreach (var option in new[] { "--model", "--provider", "--dtype", "--variant", "--verbose" }) Assert.Contains(option, help);
        }

        // convert rejects --provider; and --model is still accepted before the command name.
        var (cc, _, ce) = await RunAsync("", false, "convert", "in", "out", "--provider", "cpu");
        Assert.Equal(1, cc);
        Assert.Contains("--provider", ce);
        var (gc, generated, ge) = await RunAsync("", false, "--model", TestPaths.RepoModel("kjv-tiny"), "generate", "-t", "0", "-n", "3", "In the beginning");
        Assert.True(gc == 0, ge);
        Assert.StartsWith("In the beginning", generated);
    }

    [Theory]
    [InlineData(new[] { "gen" }, "'onnxlm generate'")]
    [InlineData(new[] { "genrate", "x" }, "'onnxlm generate'")]
    [InlineData(new[] { "tokenise", "x" }, "'onnxlm tokenize'")]
    [InlineData(new[] { "explain", "atention", "x" }, "'onnxlm explain attention'")]
    public async Task AMistypedCommandSuggestsTheCommandMeant(string[] args, string suggestion)
    {
        var (code, output, error) = await RunAsync("", false, args);
        Assert.Equal(1, code);
        Assert.Equal("", output);
        Assert.Contains($"Did you mean {suggestion}?", error);
        Assert.DoesNotContain("bench", error);
        Assert.DoesNotContain("'-h'", error);
    }

    [Fact]
    public void SuggestionsPreferPrefixesThenTheNearestNames()
    {
        string[] names = ["inspect", "tokenize", "generate", "chat", "score", "perplexity", "eval", "bench", "explain", "serve", "pull", "convert", "train-bpe"];
        Assert.Equal(["generate"], CommandSuggestions.Suggest("gen", names));
        Assert.Equal(["score", "serve"], CommandSuggestions.Suggest("s", names));
        Assert.Equal(["generate"], CommandSuggestions.Suggest("generate-text", names)); // a command the word begins with
        Assert.Equal(["score"], CommandSuggestions.Suggest("scroe", names));
        Assert.Empty(CommandSuggestions.Suggest("xyzzy", names));
        Assert.Equal(3, CommandSuggestions.Distance("kitten", "sitting"));
        Assert.Equal(0, CommandSuggestions.Distance("chat", "chat"));
        Assert.Equal(1, CommandSuggestions.Distance("scroe", "score"));
    }

    [Fact]
    public async Task InspectCountsTheLearnedParametersAsTheModelCardDoes()
    {
        // Independently: the Llama parameter formula over config.json, the tied output projection counted once.
        var folder = TestPaths.RepoModel("kjv-tiny");
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json"))).RootElement;
        long Get(string name) => config.GetProperty(name).GetInt64();
        long hidden = Get("hidden_size"), headDim = Get("head_dim"), layers = Get("num_hidden_layers"), vocab = Get("vocab_size");
        long q = Get("num_attention_heads") * headDim, kv = Get("num_key_value_heads") * headDim, mlp = Get("intermediate_size");
        Assert.True(config.GetProperty("tie_word_embeddings").GetBoolean());
        var perLayer = (hidden * q) + (2 * hidden * kv) + (q * hidden) + (3 * hidden * mlp) + (2 * hidden);
        var expected = (vocab * hidden) + (layers * perLayer) + hidden;

        var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "summary.json"))).RootElement;
        Assert.Equal(expected, summary.GetProperty("parameters").GetInt64()); // the training run's figure
        Assert.Contains($"**{expected:N0} parameters**", File.ReadAllText(Path.Combine(folder, "README.md")), StringComparison.Ordinal);

        var (code, json, error) = await RunAsync("", false, "inspect", "--model", folder, "--json");
        Assert.True(code == 0, error);
        var report = JsonDocument.Parse(json).RootElement;
        Assert.Equal(expected, report.GetProperty("learned_parameters").GetInt64());
        var stored = report.GetProperty("parameters").GetInt64();
        // The rest: the rotary cos/sin tables (context × head_dim / 2 values each, at least) and small constants; the card says both.
        Assert.True(stored - expected >= 2 * Get("max_position_embeddings") * headDim / 2, $"{stored} - {expected}");
        var card = File.ReadAllText(Path.Combine(folder, "README.md"));
        Assert.Contains($"{stored:N0}", card, StringComparison.Ordinal);
        Assert.Contains($"{stored - expected:N0} more", card, StringComparison.Ordinal);

        var (tc, table, _) = await RunAsync("", false, "inspect", "--model", folder);
        Assert.Equal(0, tc);
        Assert.Contains($"{expected:N0} learned + {stored - expected:N0} in position tables and constants = {stored:N0} values", table);
    }
}
