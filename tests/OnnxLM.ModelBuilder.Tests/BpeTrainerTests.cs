using OnnxLM.ModelBuilder.Tokenization;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>The BPE trainer learns the classic merges and writes a tokenizer.json that OnnxLM reads back identically.</summary>
public sealed class BpeTrainerTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("onnxlm-bpe-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    [Fact]
    public void LearnsTheMostFrequentPairFirstWithOrdinalTieBreaks()
    {
        // Worked by hand on "aaabdaaabac" (the textbook example, one pre-tokenized word):
        // pairs aa:4 ab:2 others 1 -> merge "aa"; then (aa,a):2 ties (a,b):2 and "aaa" < "ab" ordinally -> "aaa";
        // then (aaa,b):2 -> "aaab"; then all pairs occur once and "aaaba" sorts before "aaabd", "ac", "daaab".
        var trainer = new BpeTrainer(["<s>", "</s>"]);
        trainer.AddText("aaabdaaabac");
        var model = trainer.Train(2 + 256 + 4);

        Assert.Equal([("a", "a"), ("aa", "a"), ("aaa", "b"), ("aaab", "a")], model.Merges);
        Assert.Equal(262, model.VocabularySize);
        Assert.Equal("<s>", model.TokenString(0));
        Assert.Equal("a", model.TokenString(2 + 'a'));
        Assert.Equal("aaaba", model.TokenString(261));
    }

    [Fact]
    public void CountsWordsByFrequencyAcrossTheCorpus()
    {
        // "the" occurs 3 times, "then" once: (t,h) and (h,e) both count 4; "he" < "th" ordinally, so "he" first.
        var trainer = new BpeTrainer([]);
        trainer.AddText("the the the then");
        var model = trainer.Train(256 + 3);

        Assert.Equal([("h", "e"), ("t", "he"), ("Ġ", "the")], model.Merges);
    }

    [Fact]
    public void StopsEarlyWhenEveryWordIsOneSymbol()
    {
        var trainer = new BpeTrainer(["<s>"]);
        trainer.AddText("ab ab");
        var model = trainer.Train(10_000);

        Assert.Equal([("a", "b"), ("Ġ", "ab")], model.Merges);
        Assert.Equal(1 + 256 + 2, model.VocabularySize);
    }

    [Fact]
    public void RejectsAVocabularySmallerThanTheByteAlphabet()
    {
        var trainer = new BpeTrainer(["<s>", "</s>"]);
        Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Train(257));
    }

    [Fact]
    public void SavedTokenizerIsReadBackIdenticallyByOnnxLM()
    {
        string[] corpus =
        [
            "In the beginning God created the heaven and the earth.",
            "And God said, Let there be light: and there was light. 1234 5678",
            "Café naïve — résumé, 東京 and 北京; emoji 🙂🚀 tabs\tand  double  spaces",
            "  leading spaces, trailing spaces   ",
            "it's we're they've I'm you'll he'd",
        ];
        var trainer = new BpeTrainer(["<s>", "</s>"]);
        foreach (var line in corpus)
        {
            trainer.AddText(line);
        }

        var model = trainer.Train(2 + 256 + 120);
        model.Save(_out, "<s>", "</s>");
        var tokenizer = TextTokenizer.FromFolder(_out);

        Assert.Equal(model.VocabularySize, tokenizer.VocabularySize);
        for (var id = 0; id < model.VocabularySize; id++)
        {
            Assert.Equal(id, tokenizer.PieceToId(model.TokenString(id)));
            Assert.Equal(model.TokenString(id), tokenizer.TokenToPiece(id));
        }

        // Every training word encodes to the segmentation training ended with, and to what the trainer's own encoder gives.
        foreach (var (word, ids) in trainer.Segmentations(model))
        {
            Assert.Equal(ids, tokenizer.Encode(word, addSpecialTokens: false));
            Assert.Equal(ids, model.EncodeWord(word));
        }

        // Whole lines (and unseen text, including the special-token strings) round-trip; BOS comes from tokenizer_config.json.
        foreach (var line in corpus.Append("Unseen: Ærø 😀 <s>x</s>\nnew line"))
        {
            var ids = tokenizer.Encode(line, addSpecialTokens: false);
            Assert.Equal(line, tokenizer.Decode(ids));
            var expected = line.Contains("<s>", StringComparison.Ordinal) ? null : BpeTrainer.PreTokenize(line).SelectMany(model.EncodeWord).ToArray();
            if (expected is not null)
            {
                Assert.Equal(expected, ids);
            }
        }

        Assert.Equal([0, 2 + 'x', 1], tokenizer.Encode("<s>x</s>", addSpecialTokens: false));
        Assert.Equal(0, tokenizer.Encode("x")[0]);
    }
}
