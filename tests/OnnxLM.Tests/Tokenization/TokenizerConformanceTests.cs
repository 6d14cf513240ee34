namespace OnnxLM.Tests;

public sealed class TokenizerConformanceTests
{
    // Ids and decodes of every family against their references: TokenizerFamilyConformanceTests.
    public static TheoryData<string> SharedModels => new() { "tiny-gpt2-fp32", "tiny-llama-fp16", "tiny-phi3-gqa-fp16", "torch-llama-fp32" };

    [SharedModelFact("tiny-gpt2-fp32", "tiny-llama-fp16")]
    public void PiecesAreTheTokenizerJsonVocabularyEntries()
    {
        var gpt2 = TextTokenizer.FromFolder(TestPaths.SharedModel("tiny-gpt2-fp32"));
        Assert.Equal("ĠLORD", gpt2.TokenToPiece(gpt2.Encode(" LORD").Single()));
        Assert.Equal(50256, gpt2.PieceToId("<|endoftext|>"));
        Assert.Equal(464, gpt2.PieceToId("The"));

        var llama = TextTokenizer.FromFolder(TestPaths.SharedModel("tiny-llama-fp16"));
        Assert.Equal("▁The", llama.TokenToPiece(450));
        Assert.Equal("<0x0A>", llama.TokenToPiece(13));
        Assert.True(llama.IsSpecialToken(2));
    }

    [SharedModelFact("torch-llama-fp32", "tiny-llama-fp16")]
    public void BosFollowsTheTokenizerConfiguration()
    {
        var sp = TextTokenizer.FromFolder(TestPaths.SharedModel("torch-llama-fp32"));
        Assert.True(sp.AddBosToken);
        Assert.Equal([1, 455, 345, 339, 384, 507, 492, 269, 1948, 1966, 299, 316, 348, 268, 477, 1961],
            sp.Encode("The LORD is my shepherd; I shall not want."));
        Assert.Equal([300, 632, 394, 324, 341, 1953], sp.Encode("And Jesus said unto them,", addSpecialTokens: false));
        Assert.Equal([2], sp.EosTokenIds);

        // The tokenizer's BOS/EOS come from its own files; genai_config.json's (0 and 1 here) stay the model's.
        using var model = LanguageModel.Load(TestPaths.SharedModel("tiny-llama-fp16"));
        Assert.Equal(1, model.Tokenizer.BosTokenId);
        Assert.Equal([2], model.Tokenizer.EosTokenIds);
        Assert.Equal(0, model.Info.BosTokenId);
        Assert.Equal([1], model.Info.EosTokenIds);
        Assert.True(model.HasTokenizer);
    }

    [Fact]
    public void StreamingConcatenationEqualsDecodeOnOwnTokenizer() => AssertStreamingExact("kjv-tiny");

    [SharedModelTheory]
    [MemberData(nameof(SharedModels))]
    public void StreamingConcatenationEqualsDecode(string model) => AssertStreamingExact(model);

    private static void AssertStreamingExact(string model)
    {
        var tokenizer = TextTokenizer.FromFolder(TokenizerFixture.Folder(model));
        var sequences = TokenizerFixture.Load(model).Cases.Select(c => c.Ids).ToList();
        var random = new Random(7);
        for (var i = 0; i < 50; i++)
        {
            // Random ids too, including byte tokens that do not form valid UTF-8.
            sequences.Add(Enumerable.Range(0, random.Next(1, 30)).Select(_ => random.Next(Math.Min(tokenizer.VocabularySize, 50000))).ToArray());
        }

        foreach (var skip in new[] { false, true })
        {
            foreach (var ids in sequences)
            {
                var decoder = tokenizer.CreateStreamingDecoder(skip);
                var text = string.Concat(ids.Select(decoder.Append)) + decoder.Flush();
                Assert.Equal(tokenizer.Decode(ids, skip, cleanUpTokenizationSpaces: false), text);
            }
        }
    }

    [Fact]
    public void StreamingHoldsBackSplitCharactersAndEmitsThemOnce()
    {
        var tokenizer = TextTokenizer.FromFolder(TestPaths.RepoModel("kjv-tiny"));
        var ids = tokenizer.Encode("中", addSpecialTokens: false); // three byte tokens: no merge covers CJK in a KJV vocabulary
        Assert.Equal(3, ids.Length);
        var decoder = tokenizer.CreateStreamingDecoder();
        Assert.Equal("", decoder.Append(ids[0]));
        Assert.Equal("", decoder.Append(ids[1]));
        Assert.Equal("中", decoder.Append(ids[2]));
        Assert.Equal("", decoder.Flush());
    }

    [Fact]
    public void BadTokenizerInputsAreTypedErrors()
    {
        var temp = Directory.CreateTempSubdirectory("onnxlm-tok-").FullName;
        try
        {
            Assert.Throws<ModelFormatException>(() => TextTokenizer.FromFolder(Path.Combine(temp, "missing")));
            var none = Assert.Throws<ModelFormatException>(() => TextTokenizer.FromFolder(temp));
            Assert.Contains("tokenizer.json", none.Message);

            File.WriteAllText(Path.Combine(temp, "tokenizer.json"), "{ not json");
            Assert.Contains("not valid JSON", Assert.Throws<ModelFormatException>(() => TextTokenizer.FromFolder(temp)).Message);

            // Unknown stage types and bad fields name the file and the field.
            var file = Path.Combine(temp, "tokenizer.json");
            void Rejects(string json, params string[] named)
            {
                File.WriteAllText(file, json);
                var e = Assert.Throws<ModelFormatException>(() => TextTokenizer.FromFolder(temp));
                Assert.Equal(file, e.Path);
                foreach (var n in named) Assert.Contains(n, e.Message);
            }

            Rejects("""{ "model": { "type": "FancyPiece", "vocab": {} } }""", "model.type", "FancyPiece", file);
            Rejects("""{ "model": { "type": "BPE", "vocab": { "a": 0, "b": 1, "ab": 2 }, "merges": ["a c"] } }""", "model.merges[0]", "\"a c\"");
            Rejects("""{ "model": { "type": "BPE", "vocab": { "a": 0 }, "merges": [] }, "normalizer": { "type": "Sparkle" } }""", "normalizer.type", "Sparkle");
            Rejects("""{ "model": { "type": "BPE", "vocab": { "a": 0 }, "merges": [] }, "pre_tokenizer": { "type": "Sequence", "pretokenizers": [{ "type": "Split", "pattern": { "Regex": "(" } }] } }""", "pre_tokenizer.pretokenizers[0].pattern.Regex");
            Rejects("""{ "model": { "type": "BPE", "vocab": { "a": "zero" }, "merges": [] } }""", "model.vocab[\"a\"]");
            Rejects("""{ "model": { "type": "WordPiece", "vocab": { "a": 0 }, "unk_token": "[UNK]" } }""", "model.unk_token", "[UNK]");
            File.Delete(file);

            File.Delete(Path.Combine(temp, "tokenizer.json"));
            File.WriteAllBytes(Path.Combine(temp, "tokenizer.model"), [0xFF, 0x01, 0x02]);
            Assert.Contains("SentencePiece", Assert.Throws<ModelFormatException>(() => TextTokenizer.FromFolder(temp)).Message);
        }
        finally
        {
            Directory.Delete(temp, true);
        }

        var tokenizer = TextTokenizer.FromFolder(TestPaths.RepoModel("kjv-tiny"));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([5, tokenizer.VocabularySize]));
        Assert.Contains(tokenizer.VocabularySize.ToString(), e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.CreateStreamingDecoder().Append(-1));
        Assert.Throws<ArgumentNullException>(() => tokenizer.Encode(null!));
    }
}
