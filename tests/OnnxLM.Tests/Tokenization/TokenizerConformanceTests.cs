namespace OnnxLM.Tests;

public sealed class TokenizerConformanceTests
{
    public static TheoryData<string> SharedModels => new() { "tiny-gpt2-fp32", "tiny-llama-fp16", "tiny-phi3-gqa-fp16", "torch-llama-fp32" };

    [Fact]
    public void OwnTokenizerMatchesHuggingFace() => AssertMatchesFixture("kjv-tiny");

    [SharedModelTheory]
    [MemberData(nameof(SharedModels))]
    public void SharedTokenizersMatchTheirReferenceImplementations(string model) => AssertMatchesFixture(model);

    private static void AssertMatchesFixture(string model)
    {
        var fixture = TokenizerFixture.Load(model);
        var tokenizer = TextTokenizer.FromFolder(TokenizerFixture.Folder(model));
        var mismatches = new List<string>();
        foreach (var c in fixture.Cases)
        {
            var ids = tokenizer.Encode(c.Text, addSpecialTokens: false);
            if (!ids.SequenceEqual(c.Ids))
            {
                mismatches.Add($"'{c.Text}': expected [{string.Join(",", c.Ids)}] got [{string.Join(",", ids)}]");
            }
        }

        Assert.True(mismatches.Count == 0, $"{model} ({fixture.Source}):\n" + string.Join("\n", mismatches));
    }

    [Fact]
    public void OwnTokenizerRoundTripsEveryText() => AssertDecodesLikeReference("kjv-tiny", minimumExactRoundTrips: 21);

    [SharedModelTheory]
    [InlineData("tiny-gpt2-fp32", 21)]
    [InlineData("tiny-llama-fp16", 20)] // "<s>"/"</s>" in text: Llama's normalizer prepends ▁ after each special token
    [InlineData("torch-llama-fp32", 13)] // nmt_nfkc collapses whitespace runs, maps … to ..., drops edge spaces
    public void SharedTokenizersDecodeLikeTheirReference(string model, int minimumExactRoundTrips) =>
        AssertDecodesLikeReference(model, minimumExactRoundTrips);

    /// <summary>decode(encode(text)) equals the reference library's decode, and equals the text itself where the reference round-trips.</summary>
    private static void AssertDecodesLikeReference(string model, int minimumExactRoundTrips)
    {
        var tokenizer = TextTokenizer.FromFolder(TokenizerFixture.Folder(model));
        var exact = 0;
        foreach (var c in TokenizerFixture.Load(model).Cases)
        {
            var decoded = tokenizer.Decode(tokenizer.Encode(c.Text, addSpecialTokens: false));
            Assert.Equal(c.Decoded, decoded);
            exact += decoded == c.Text ? 1 : 0;
        }

        Assert.True(exact >= minimumExactRoundTrips, $"{model}: only {exact} texts round-trip exactly");
    }

    [SharedModelFact("tiny-phi3-gqa-fp16")]
    public void CharacterTokenizerRoundTripsTextInItsAlphabet()
    {
        // 256 single-character entries (printable ASCII and more), no merges, no byte fallback, no unknown token:
        // characters outside it are dropped, as the tokenizers library does. OnnxLM concatenates pieces where the
        // library, having no decoder configured, would join them with spaces.
        var tokenizer = TextTokenizer.FromFolder(TestPaths.SharedModel("tiny-phi3-gqa-fp16"));
        var texts = TokenizerFixture.Load("tiny-phi3-gqa-fp16").Cases.Select(c => c.Text)
            .Where(t => t.All(ch => ch is >= ' ' and < '\u007F') && !t.Contains('<')).ToArray();
        Assert.True(texts.Length >= 10);
        foreach (var text in texts)
        {
            Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
        }
    }

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

        using var model = LanguageModel.Load(TestPaths.SharedModel("tiny-llama-fp16"));
        Assert.Equal(0, model.Tokenizer.BosTokenId); // genai_config.json overrides the tokenizer files
        Assert.Equal([1], model.Tokenizer.EosTokenIds);
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
                Assert.Equal(tokenizer.Decode(ids, skip), text);
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

            File.WriteAllText(Path.Combine(temp, "tokenizer.json"), """{ "model": { "type": "WordPiece", "vocab": {} } }""");
            Assert.Contains("WordPiece", Assert.Throws<ModelFormatException>(() => TextTokenizer.FromFolder(temp)).Message);

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
