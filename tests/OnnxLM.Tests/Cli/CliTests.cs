using System.Text.Json;
using System.Text.Json.Nodes;
using OnnxLM.Chat;
using OnnxLM.Cli;
using OnnxLM.Cli.Commands;
using OnnxLM.ModelBuilder;

namespace OnnxLM.Tests;

/// <summary>Every onnxlm command in-process on the repository model: output content against the library's own results, exit codes, errors.</summary>
public sealed class CliTests
{
    private static readonly string Model = ConformanceModels.Get(ConformanceModels.Repo).Path;

    /// <summary>Runs the tool in process with no input; returns its exit code and what it wrote to each stream.</summary>
    internal static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args) => await RunWithInputAsync("", args);

    /// <summary>Runs the tool in process with <paramref name="input"/> as its standard input.</summary>
    internal static async Task<(int Code, string Output, string Error)> RunWithInputAsync(string input, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.RunAsync(args, output, error, new StringReader(input));
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task HelpListsEveryCommandAndEachCommandHasHelp()
    {
        var (code, output, _) = await RunAsync("--help");
        Assert.Equal(0, code);
        string[] commands = ["inspect", "tokenize", "generate", "chat", "score", "perplexity", "eval", "bench", "convert", "train-bpe"];
        foreach (var command in commands)
        {
            Assert.Contains($"  {command}", output);
            var (c, help, _) = await RunAsync(command, "--help");
            Assert.Equal(0, c);
            Assert.Contains($"onnxlm {command}", help);
        }

        var (vc, version, _) = await RunAsync("--version");
        Assert.Equal(0, vc);
        Assert.StartsWith(typeof(CliApp).Assembly.GetName().Version!.ToString(3), version);
    }

    [Fact]
    public async Task ServeBatchesConcurrentRequestsByDefault()
    {
        var (code, help, _) = await RunAsync("serve", "--help");
        Assert.Equal(0, code);
        // Continuous batching on: as many requests decode together as the library batches by default (16), not 1.
        var line = Assert.Single(help.Split('\n'), l => l.TrimStart().StartsWith("--max-concurrent", StringComparison.Ordinal));
        Assert.Contains($"[default: {LanguageModelOptions.DefaultMaxBatchSize}]", line);
        Assert.Contains("continuous batching", line);
        Assert.Equal(16, LanguageModelOptions.DefaultMaxBatchSize);
    }

    [Fact]
    public async Task GenerateStreamsThePromptAndTheLibrarysContinuation()
    {
        const string prompt = "And the LORD said unto Moses,";
        var (code, output, error) = await RunAsync("generate", "--model", Model, "--temperature", "0", "--max-new-tokens", "12", prompt);
        Assert.True(code == 0, error);
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var expected = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 12 });
        Assert.Equal(prompt + expected.Text + Environment.NewLine, output);
        Assert.Matches(@"^\[12 tokens, [0-9.]+ tokens/s, first token after \d+ ms, finish: Length\]", error);

        // The default model, stdin as the prompt, and --json against the library's tokens.
        var (jsonCode, json, _) = await RunWithInputAsync(prompt, "generate", "-", "-t", "0", "-n", "5", "--json");
        Assert.Equal(0, jsonCode);
        using var doc = JsonDocument.Parse(json);
        var five = await model.GenerateAsync(prompt, new GenerationOptions { MaxNewTokens = 5 });
        Assert.Equal(five.Text, doc.RootElement.GetProperty("text").GetString());
        Assert.Equal(five.TokenIds, doc.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("id").GetInt32()));
        Assert.Equal(five.Tokens[0].LogProb, doc.RootElement.GetProperty("tokens")[0].GetProperty("logprob").GetDouble(), 9);
        Assert.Equal("length", doc.RootElement.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task ConstraintOptionsShapeTheOutput()
    {
        var (code, output, error) = await RunAsync("generate", "--regex", "[0-9]{3}-[0-9]{2}", "-t", "0", "-n", "20", "And God said");
        Assert.True(code == 0, error);
        Assert.Matches(@"^And God said[0-9]{3}-[0-9]{2}\r?\n\z", output);
        var (cc, choice, _) = await RunAsync("generate", "--choice", "light", "--choice", "darkness", "-t", "0", "And God said, Let there be ");
        Assert.Equal(0, cc);
        Assert.Matches(@"^And God said, Let there be (light|darkness)\r?\n\z", choice);
        var schemaFile = Path.GetTempFileName();
        File.WriteAllText(schemaFile, "{\"type\": \"object\", \"properties\": {\"n\": {\"type\": \"integer\"}}, \"required\": [\"n\"]}");
        var (sc, structured, se) = await RunAsync("generate", "--json-schema", schemaFile, "-t", "0", "-n", "30", "And God said");
        File.Delete(schemaFile);
        Assert.True(sc == 0, se);
        Assert.True(System.Text.Json.JsonDocument.Parse(structured["And God said".Length..]).RootElement.GetProperty("n").TryGetInt64(out _), structured);
        var (bc, _, bad) = await RunAsync("generate", "--regex", "(unclosed", "x");
        Assert.Equal(1, bc);
        Assert.Contains("missing ')'", bad);
        var grammarFile = Path.GetTempFileName();
        File.WriteAllText(grammarFile, "root ::= \"(\" digits (\",\" digits){0,2} \")\"\ndigits ::= [0-9]{1,3}\n");
        var (gc, tuple, ge) = await RunAsync("generate", "--grammar", grammarFile, "-t", "0", "-n", "30", "And God said");
        File.WriteAllText(grammarFile, "root ::= undefined\n");
        var (gbc, _, gbad) = await RunAsync("generate", "--grammar", grammarFile, "x");
        File.Delete(grammarFile);
        Assert.True(gc == 0, ge);
        Assert.Matches(@"^And God said\([0-9]{1,3}(,[0-9]{1,3}){0,2}\)\r?\n\z", tuple);
        Assert.Equal(1, gbc);
        Assert.Contains("'undefined' is used but never defined", gbad);
    }

    [Fact]
    public async Task StopStringEndsTheOutputBeforeIt()
    {
        var (code, output, _) = await RunAsync("generate", "--temperature", "0", "--max-new-tokens", "60", "--stop", ",", "And God said");
        Assert.Equal(0, code);
        Assert.DoesNotContain(",", output["And God said".Length..]);
    }

    [Fact]
    public async Task TokenizeShowsPiecesIdsAndMerges()
    {
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var ids = model.Tokenizer.Encode("In the beginning");
        // Piped: one "id<TAB>piece" line per token, the counts on standard error.
        var (code, output, error) = await RunAsync("tokenize", "In the beginning");
        Assert.Equal(0, code);
        var nl = Environment.NewLine;
        Assert.Equal($"{ids[0]}\t<s>{nl}{ids[1]}\tIn{nl}{ids[2]}\t·the{nl}{ids[3]}\t·beginning{nl}", output);
        Assert.Contains("4 tokens, 16 characters, 16 bytes", error);

        // On a terminal: the coloured pieces run on one line, each followed by its id.
        using var terminal = new StringWriter();
        Assert.Equal(0, await CliApp.RunAsync(["tokenize", "In the beginning"], terminal, new StringWriter(), new StringReader(""), terminal: true));
        var plain = System.Text.RegularExpressions.Regex.Replace(terminal.ToString(), "\u001b\\[[0-9;]*m", "");
        Assert.StartsWith($"<s>{ids[0]} In{ids[1]} ·the{ids[2]} ·beginning{ids[3]}", plain);
        Assert.Contains("4 tokens, 16 characters, 16 bytes", plain);

        var (jc, json, _) = await RunAsync("tokenize", "--json", "--no-special", "In the beginning");
        Assert.Equal(0, jc);
        var tokens = JsonDocument.Parse(json).RootElement.EnumerateArray().ToList();
        Assert.Equal(model.Tokenizer.Encode("In the beginning", addSpecialTokens: false), tokens.Select(t => t.GetProperty("id").GetInt32()));
        Assert.Equal(" beginning", tokens[^1].GetProperty("text").GetString());

        // --explain replays the BPE merges; the last merge of a word makes its token.
        var (ec, explain, _) = await RunAsync("tokenize", "--explain", "--no-special", "In the");
        Assert.Equal(0, ec);
        Assert.Contains("t + h → th (merge #", explain);
        Assert.Contains("Ġth + e → Ġthe (merge #", explain);
    }

    [Fact]
    public async Task InspectReportsTheModelAndItsGraph()
    {
        var (code, json, error) = await RunAsync("inspect", "--json");
        Assert.True(code == 0, error);
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var report = JsonDocument.Parse(json).RootElement;
        Assert.Equal(model.Info.LayerCount, report.GetProperty("layers").GetInt32());
        Assert.Equal(model.Info.ContextLength, report.GetProperty("context_length").GetInt32());
        Assert.Equal("Cpu", report.GetProperty("provider").GetString());
        Assert.InRange(report.GetProperty("parameters").GetInt64(), 9_000_000, 11_000_000); // its model card: 9.9 M
        Assert.Equal("float16", report.GetProperty("weight_type").GetString()); // its model card: weights stored as fp16
        Assert.InRange(report.GetProperty("bytes_per_parameter").GetDouble(), 1.99, 2.01);
        Assert.Contains(report.GetProperty("inputs").EnumerateArray(), i => i.GetProperty("name").GetString() == "input_ids");
        Assert.Equal(JsonValueKind.Null, report.GetProperty("chat_template").ValueKind);
        var (tc, table, _) = await RunAsync("inspect");
        Assert.Equal(0, tc);
        Assert.Contains("out logits", table);
    }

    [Fact]
    public async Task ScoreMatchesTheLibrary()
    {
        var (code, json, error) = await RunAsync("score", "And God said,", " Let there be light", "--top", "2", "--json");
        Assert.True(code == 0, error);
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var expected = await model.ScoreAsync("And God said,", " Let there be light", new ScoreOptions { TopAlternatives = 2 });
        var score = JsonDocument.Parse(json).RootElement;
        Assert.Equal(expected.LogProb, score.GetProperty("logprob").GetDouble(), 9);
        Assert.Equal(expected.IsGreedy, score.GetProperty("is_greedy").GetBoolean());
        Assert.Equal(expected.Tokens.Select(t => t.Rank), score.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("rank").GetInt32()));
        Assert.Equal(2, score.GetProperty("tokens")[0].GetProperty("alternatives").GetArrayLength());
        var (_, table, _) = await RunAsync("score", "And God said,", " Let there be light");
        Assert.Contains(FormattableString.Invariant($"log-prob {expected.LogProb:F4} over 4 tokens"), table);
    }

    [Fact]
    public async Task PerplexityEqualsTheLibrarysRollingScore()
    {
        const string text = "And I saw a new heaven and a new earth: for the first heaven and the first earth were passed away.";
        var (code, output, error) = await RunWithInputAsync(text + "\n\n", "perplexity", "--window", "16", "-");
        Assert.True(code == 0, error);
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var expected = await model.ScorePerplexityAsync(text, new PerplexityOptions { WindowLength = 16 });
        Assert.Contains(FormattableString.Invariant($"1 documents, {expected.TokenCount} tokens, {expected.ByteCount} bytes"), output);
        Assert.Contains(FormattableString.Invariant($"bits per byte {expected.BitsPerByte:F4}"), output);
    }

    [Fact]
    public async Task EvalAnswersLmEvalRequestsAsTheLibraryScores()
    {
        const string requests = """
            {"request_type": "loglikelihood", "arguments": ["And God said,", " Let there be light"]}
            {"request_type": "loglikelihood_rolling", "arguments": ["In the beginning God created the heaven and the earth."]}
            {"request_type": "generate_until", "arguments": ["And God said", {"until": [","], "max_gen_toks": 30}]}
            """;
        var (code, output, error) = await RunWithInputAsync(requests, "eval", "-");
        Assert.True(code == 0, error);
        var answers = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("result")).ToList();
        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var ll = await model.ScoreAsync("And God said,", " Let there be light");
        Assert.Equal(ll.LogProb, answers[0][0].GetDouble(), 9);
        Assert.Equal(ll.IsGreedy, answers[0][1].GetBoolean());
        Assert.Equal((await model.ScorePerplexityAsync("In the beginning God created the heaven and the earth.")).LogProb, answers[1].GetDouble(), 9);
        var options = new GenerationOptions { MaxNewTokens = 30, StopSequences = { "," } };
        Assert.Equal((await model.GenerateAsync("And God said", options)).Text, answers[2].GetString());

        var (bad, _, badError) = await RunWithInputAsync("{\"request_type\": \"embed\", \"arguments\": [\"x\"]}", "eval", "-");
        Assert.Equal(2, bad);
        Assert.Contains("request_type 'embed'", badError);
    }

    [Fact]
    public async Task ChatRepliesToEachLineAsAChatSessionDoes()
    {
        var (code, output, error) = await RunWithInputAsync("In the beginning\n\n/reset\nAnd God said\n/system Psalms.\nThen what?\n/exit\nnever sent\n",
            "chat", "--temperature", "0", "--max-new-tokens", "8", "--system", "Scripture.", "--stats");
        Assert.True(code == 0, error);
        Assert.Contains("no chat template; using the plain", error);
        Assert.Matches(@"\[prompt \d+ tokens, \d+ from the cache, 8 generated, finish: Length\]", error);

        using var model = ConformanceModels.Load(ConformanceModels.Repo);
        var options = new GenerationOptions { Temperature = 0, MaxNewTokens = 8 };
        using var first = model.CreateChat(new ChatSessionOptions { SystemPrompt = "Scripture." });
        var a = await first.SendAsync("In the beginning", options);
        using var second = model.CreateChat(new ChatSessionOptions { SystemPrompt = "Scripture." }); // after /reset
        var b = await second.SendAsync("And God said", options);
        using var third = model.CreateChat(new ChatSessionOptions { SystemPrompt = "Psalms." }); // after /system
        var c = await third.SendAsync("Then what?", options);
        var nl = Environment.NewLine;
        Assert.Equal(a.Text + nl + b.Text + nl + c.Text + nl, output);
    }

    [Fact]
    public async Task BenchReportsSpeedsAndMemory()
    {
        var (code, json, error) = await RunAsync("bench", "--prompt-tokens", "16", "--new-tokens", "8", "--runs", "1", "--json");
        Assert.True(code == 0, error);
        var r = JsonDocument.Parse(json).RootElement;
        Assert.Equal(16, r.GetProperty("prompt_tokens").GetInt32());
        foreach (var key in (string[])["prefill_tokens_per_second", "decode_tokens_per_second", "time_to_first_token_ms", "peak_memory_mb"])
        {
            Assert.True(r.GetProperty(key).GetDouble() > 0, key);
        }
    }

    [Fact]
    public async Task TrainBpeWritesATokenizerTheLibraryLoads()
    {
        var folder = Directory.CreateTempSubdirectory("onnxlm-train-bpe-").FullName;
        try
        {
            var corpus = Path.Combine(folder, "corpus.txt");
            File.WriteAllLines(corpus, Enumerable.Repeat("In the beginning God created the heaven and the earth.", 50));
            var (code, output, error) = await RunAsync("train-bpe", corpus, Path.Combine(folder, "tok"), "--vocab-size", "300", "--encode", corpus, Path.Combine(folder, "ids.bin"));
            Assert.True(code == 0, error);
            Assert.Matches(@"^trained \d+ tokens \(\d+ merges\)", output); // a small corpus runs out of pairs before 300
            var tokenizer = TextTokenizer.FromFolder(Path.Combine(folder, "tok"));
            var ids = tokenizer.Encode("In the beginning", addSpecialTokens: false);
            Assert.Equal("In the beginning", tokenizer.Decode(ids));
            Assert.Equal(new FileInfo(Path.Combine(folder, "ids.bin")).Length / 2, long.Parse(output.Split("encoded ")[1].Split(": ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture));

            // A flag without its value (the old hand-written parser read past the end of args) is a usage error.
            var (missing, _, why) = await RunAsync("train-bpe", corpus, Path.Combine(folder, "tok2"), "--vocab-size");
            Assert.Equal(1, missing); // usage errors exit with 1
            Assert.Contains("--vocab-size", why);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [SharedModelFact("torch-llama-fp32-hf")]
    public async Task ConvertQuantizesAndInspectReportsBytesPerParameter()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"onnxlm-convert-{Guid.NewGuid():N}");
        try
        {
            var (fc, _, fe) = await RunAsync("convert", TestPaths.SharedModel("torch-llama-fp32-hf"), folder + "-fp32");
            Assert.True(fc == 0, fe);
            var (code, output, error) = await RunAsync("convert", TestPaths.SharedModel("torch-llama-fp32-hf"), folder, "--quantize", "int4", "--block-size", "64");
            Assert.True(code == 0, error);
            Assert.Contains("int4, block 64, symmetric", output);
            async Task<JsonElement> Inspect(string model)
            {
                var (ic, json, ie) = await RunAsync("inspect", "--model", model, "--json");
                Assert.True(ic == 0, ie);
                return JsonDocument.Parse(json).RootElement;
            }

            var (fp32, int4) = (await Inspect(folder + "-fp32"), await Inspect(folder));
            Assert.Equal(("float32", "int4"), (fp32.GetProperty("weight_type").GetString(), int4.GetProperty("weight_type").GetString()));
            // The same weights, stored smaller: a packed matrix counts its K × N weights, not its bytes (which would be ~500 k
            // fewer). Only the int64 split sizes of the stacked q/k/v and gate/up products (5 per layer) are new; inspect
            // counts such constants like the graph's other initializers.
            Assert.Equal(fp32.GetProperty("parameters").GetInt64() + (4 * 5), int4.GetProperty("parameters").GetInt64());

            // Its model card: per layer q/o [128, 128], k/v [64, 128], gate/up [352, 128], down [128, 352]; lm_head [2000, 128].
            // Each [N, K] matrix becomes N × ceil(K / 64) blocks of 32 bytes and a float32 scale instead of N × K floats.
            (int N, int K)[] layer = [(128, 128), (64, 128), (64, 128), (128, 128), (352, 128), (352, 128), (128, 352)];
            var matrices = Enumerable.Repeat(layer, 4).SelectMany(m => m).Append((N: 2000, K: 128)).ToArray();
            var saved = matrices.Sum(m => 4L * m.N * m.K - (long)m.N * ((m.K + 63) / 64) * (32 + 4));
            Assert.Equal(fp32.GetProperty("weight_bytes").GetInt64() - saved + (4 * 5 * 8), int4.GetProperty("weight_bytes").GetInt64()); // + the split sizes
            Assert.InRange(int4.GetProperty("bytes_per_parameter").GetDouble(), 0.5, 1.5);
            Assert.Equal(4.0, fp32.GetProperty("bytes_per_parameter").GetDouble(), 1);
            var (tc, table, _) = await RunAsync("inspect", "--model", folder);
            Assert.Equal(0, tc);
            Assert.Contains("int4:", table);
            Assert.Contains("bytes per parameter", table);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            if (Directory.Exists(folder + "-fp32")) Directory.Delete(folder + "-fp32", recursive: true);
        }
    }

    [Fact]
    public void ConvertChoosesGroupQueryAttentionFromAHundredMillionParameters()
    {
        DecoderConfig Config(int hidden, int layers, int heads, int kvHeads, int headSize, int mlp, int vocab) => new()
        {
            ModelType = "llama", HiddenSize = hidden, LayerCount = layers, AttentionHeadCount = heads, KeyValueHeadCount = kvHeads,
            HeadSize = headSize, IntermediateSize = mlp, VocabularySize = vocab, MaxPositions = 4096, TieWordEmbeddings = true,
        };

        // The published parameter counts, less what the estimate leaves out: 2 RMS norms a layer and the final one (and
        // Qwen2's q/k/v biases).
        var llama = Config(2048, 16, 32, 8, 64, 8192, 128_256);
        Assert.Equal(1_235_814_400 - (16 * 2 * 2048 + 2048), ModelBuilderCommands.ParameterCount(llama));
        var qwen = Config(896, 24, 14, 2, 64, 4864, 151_936);
        Assert.Equal(494_032_768 - (24 * 2 * 896 + 896) - 24 * (896 + 2 * 128), ModelBuilderCommands.ParameterCount(qwen));
        Assert.True(ModelBuilderCommands.PrefersGroupQuery(llama));
        Assert.True(ModelBuilderCommands.PrefersGroupQuery(qwen));
        Assert.False(ModelBuilderCommands.PrefersGroupQuery(llama with { HeadSize = 36, AttentionHeadCount = 56, KeyValueHeadCount = 14 })); // the operator needs a multiple of 8
        Assert.False(ModelBuilderCommands.PrefersGroupQuery(DecoderConfig.Load(Model))); // kjv-tiny: every explain view
        Assert.True(ModelBuilderCommands.ParameterCount(DecoderConfig.Load(Model)) < ModelBuilderCommands.GroupQueryFromParameters);
    }

    [SharedModelFact("torch-llama-fp32-hf")]
    public async Task ConvertWithGroupQueryAttentionBuildsASharedCacheModelThatGeneratesTheSameText()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"onnxlm-convert-{Guid.NewGuid():N}");
        try
        {
            var (sc, _, se) = await RunAsync("convert", TestPaths.SharedModel("torch-llama-fp32-hf"), folder + "-standard", "--context-length", "64");
            Assert.True(sc == 0, se);
            var (code, output, error) = await RunAsync("convert", TestPaths.SharedModel("torch-llama-fp32-hf"), folder, "--context-length", "64", "--attention", "gqa");
            Assert.True(code == 0, error);
            Assert.Contains("GroupQueryAttention", output);
            using var standard = LanguageModel.Load(folder + "-standard");
            using var gqa = LanguageModel.Load(folder);
            Assert.True(gqa.Runtime.Graph.SharesCacheBuffer);
            // Converted graphs take the logits count (with a default, for runtimes that do not feed it): a prefill computes one row.
            Assert.Equal("num_logits_to_keep", gqa.Runtime.Graph.Signature.LogitsToKeep);
            Assert.Equal("num_logits_to_keep", standard.Runtime.Graph.Signature.LogitsToKeep);
            // ...and GenAI, which does not feed it, is told not to print ONNX Runtime's warning about it at every load.
            var genai = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "genai_config.json")))!;
            Assert.Equal(3, (int)genai["model"]!["decoder"]!["session_options"]!["log_severity_level"]!);
            var options = new GenerationOptions { MaxNewTokens = 20, StopTokenIds = [] };
            Assert.Equal((await standard.GenerateAsync("And God said", options)).TokenIds, (await gqa.GenerateAsync("And God said", options)).TokenIds);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            if (Directory.Exists(folder + "-standard")) Directory.Delete(folder + "-standard", recursive: true);
        }
    }

    [SharedModelFact("torch-llama-fp32-hf")]
    public async Task ConvertBuildsAModelTheToolRuns()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"onnxlm-convert-{Guid.NewGuid():N}");
        try
        {
            var (code, output, error) = await RunAsync("convert", TestPaths.SharedModel("torch-llama-fp32-hf"), folder, "--context-length", "64");
            Assert.True(code == 0, error);
            Assert.StartsWith($"wrote {folder} in ", output);
            using var built = LanguageModel.Load(folder);
            Assert.Equal(64, built.Info.ContextLength);
            var (gc, generated, ge) = await RunAsync("generate", "--model", folder, "-t", "0", "-n", "5", "And God said");
            Assert.True(gc == 0, ge);
            Assert.Equal("And God said" + (await built.GenerateAsync("And God said", new GenerationOptions { MaxNewTokens = 5 })).Text + Environment.NewLine, generated);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData(1, "Unrecognized command or argument", "generate", "--bogus", "x")]
    [InlineData(1, "Cannot parse argument 'many' for option '--top-k'", "generate", "--top-k", "many", "x")]
    [InlineData(1, "no prompt given", "generate")]
    [InlineData(1, "the prompt is empty", "generate", "")]
    [InlineData(1, "Argument 'random' not recognized. Must be one of", "generate", "--sampler-order", "random", "x")]
    [InlineData(1, "--top-p: TopP must be in (0, 1]", "generate", "--top-p", "1.5", "x")]
    [InlineData(1, "generate: --mirostat: Mirostat must be 0, 1 or 2; got 3. (see onnxlm generate --help)", "generate", "--mirostat", "3", "x")]
    [InlineData(1, "--xtc-probability: XtcProbability must be in [0, 1]; got 2.", "generate", "--xtc-probability", "2", "x")]
    [InlineData(1, "--regex: Regular expression '(' at ", "generate", "--regex", "(", "x")]
    [InlineData(1, "perplexity: --window: WindowLength must be at least 2; got 1. (see", "perplexity", "README.md", "--window", "1")]
    [InlineData(1, "--stride: Stride must be at least 1; got 0.", "perplexity", "README.md", "--stride", "0")]
    [InlineData(1, "--max-new-tokens 1000000 with a 2-token prompt passes the model's context length 256; use at most 254", "generate", "--max-new-tokens", "1000000", "x")]
    [InlineData(1, "Unrecognized command or argument 'train'", "train")]
    [InlineData(1, "--top must be between 0 and 100", "score", "a", "b", "--top", "500")]
    [InlineData(2, "The text file 'no-such-file.txt' does not exist", "perplexity", "no-such-file.txt")]
    [InlineData(2, "has neither genai_config.json", "generate", "--model", ".", "x")]
    [InlineData(2, "The model folder 'no-such-folder' does not exist", "generate", "--model", "no-such-folder", "x")]
    [InlineData(2, "is a file; give the model folder that holds it", "inspect", "--model", "models/kjv-tiny/model.onnx")]
    [InlineData(2, "has no CUDA execution provider", "generate", "--provider", "cuda", "x")]
    [InlineData(1, "Argument 'int3' not recognized. Must be one of", "convert", "a", "b", "--quantize", "int3")]
    [InlineData(1, "--block-size must be 16, 32, 64, 128 or 256 (found 48)", "convert", "a", "b", "--quantize", "int4", "--block-size", "48")]
    [InlineData(1, "--accuracy-level must be between 0 and 4 (found 7)", "convert", "a", "b", "--quantize", "int8", "--accuracy-level", "7")]
    [InlineData(1, "need --quantize int4 or int8", "convert", "a", "b", "--block-size", "64")]
    [InlineData(1, "Argument 'flash' not recognized. Must be one of", "convert", "a", "b", "--attention", "flash")]
    [InlineData(1, "--attentions needs --attention standard", "convert", "a", "b", "--attention", "gqa", "--attentions")]
    public async Task BadArgumentsExitNonZeroNamingTheProblem(int expectedCode, string message, params string[] args)
    {
        var previous = Environment.CurrentDirectory;
        Environment.CurrentDirectory = TestPaths.RepoRoot;
        try
        {
            var (code, output, error) = await RunAsync(args);
            Assert.Equal(expectedCode, code);
            Assert.Contains(message, error);
            if (code == 2) Assert.Equal("", output); // nothing echoed before the error (a usage error prints the command's help)
            Assert.DoesNotContain("   at ", error); // one line, no stack trace without --verbose
        }
        finally
        {
            Environment.CurrentDirectory = previous;
        }
    }

    [Fact]
    public async Task AnOverLongPromptFailsBeforeAnythingIsPrinted()
    {
        var (code, output, error) = await RunAsync("generate", string.Join(' ', Enumerable.Repeat("and the LORD spake", 200)));
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains("context length 256 leaves no room", error);

        var empty = Path.GetTempFileName();
        try
        {
            var (pc, _, pe) = await RunAsync("perplexity", empty);
            Assert.Equal(2, pc);
            Assert.Contains("has no text to score", pe);
        }
        finally
        {
            File.Delete(empty);
        }
    }
}
