using OnnxLM.Tokenization;

namespace OnnxLM.Tests;

/// <summary>
/// BpeModel cuts a SentencePiece-style word (the whole text) before "▁" and merges the pieces apart; that is exact
/// only while no token spans such a cut, which the model checks per vocabulary. Against a naive whole-word merge.
/// </summary>
public sealed class BpeSegmentationTests
{
    private static BpeModel Model(params string[] merges)
    {
        var vocab = new Dictionary<string, int>();
        foreach (var piece in (string[])["▁", "a", "b", "c"]) vocab[piece] = vocab.Count;
        var pairs = new List<(string, string)>();
        foreach (var merge in merges)
        {
            var (left, right) = (merge.Split(' ')[0], merge.Split(' ')[1]);
            pairs.Add((left, right));
            vocab.TryAdd(left + right, vocab.Count);
        }

        return new BpeModel(vocab, pairs);
    }

    private static List<string> Tokenize(BpeModel model, string word)
    {
        var ids = new List<int>();
        var ends = new List<int>();
        model.Tokenize(word, ids, ends);
        Assert.Equal(word.Length, ends[^1]);
        return ids.ConvertAll(id => model.IdToToken(id)!);
    }

    [Fact]
    public void PiecesMergeOnTheirOwnWhenNoTokenSpansAMetaspace()
    {
        var model = Model("▁ a", "▁a b", "▁ ▁", "▁▁ c");
        Assert.Equal(["▁ab", "▁ab", "▁▁", "▁a", "▁▁c"], Tokenize(model, "▁ab▁ab▁▁▁a▁▁c"));
        Assert.Equal(["a", "b", "▁ab", "c"], Tokenize(model, "ab▁abc")); // ends are offsets into the whole word
    }

    [Fact]
    public void AVocabularyWithATokenAcrossAMetaspaceIsMergedWhole()
    {
        // "b▁" + "a" would be cut apart between "b" and "▁a"; the token "b▁a" makes the model keep the word whole.
        var model = Model("b ▁", "b▁ a", "▁ a");
        Assert.Equal(["a", "b▁a", "b▁a"], Tokenize(model, "ab▁ab▁a"));
    }
}
