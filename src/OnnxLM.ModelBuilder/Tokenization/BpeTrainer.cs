using System.Text;
using System.Text.RegularExpressions;

namespace OnnxLM.ModelBuilder.Tokenization;

/// <summary>
/// Trains a byte-level BPE tokenizer with the classic algorithm: split text into words with GPT-2's regex,
/// start every word as its UTF-8 bytes, then repeatedly merge the most frequent adjacent pair of symbols
/// (counted over all words, weighted by word frequency) until the vocabulary reaches the target size.
/// Ties go to the pair whose merged string sorts first (ordinal), so training is deterministic.
/// Pair counts are updated incrementally from an index of the words each pair occurs in.
/// </summary>
public sealed partial class BpeTrainer
{
    /// <summary>GPT-2's pre-tokenizer pattern: contractions, letters, digits, other symbols, each with an optional leading space; whitespace runs.</summary>
    public const string SplitPattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    [GeneratedRegex(SplitPattern)]
    private static partial Regex SplitRegex();

    private readonly List<int[]> _words = [];
    private readonly List<long> _counts = [];
    private readonly Dictionary<string, int> _wordIndex = new(StringComparer.Ordinal);

    /// <summary>Special tokens given the first ids, in order (e.g. "&lt;s&gt;", "&lt;/s&gt;").</summary>
    public IReadOnlyList<string> SpecialTokens { get; }

    /// <summary>Creates a trainer.</summary>
    public BpeTrainer(IReadOnlyList<string> specialTokens)
    {
        ArgumentNullException.ThrowIfNull(specialTokens);
        SpecialTokens = specialTokens;
    }

    /// <summary>Splits text into the words BPE works within (GPT-2's pattern).</summary>
    public static IEnumerable<string> PreTokenize(string text)
    {
        foreach (Match match in SplitRegex().Matches(text))
        {
            yield return match.Value;
        }
    }

    /// <summary>Adds text to the training counts.</summary>
    public void AddText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var match in SplitRegex().EnumerateMatches(text))
        {
            var word = text.Substring(match.Index, match.Length);
            if (!_wordIndex.TryGetValue(word, out var index))
            {
                index = _words.Count;
                _wordIndex[word] = index;
                _words.Add(Encoding.UTF8.GetBytes(word).Select(b => (int)b).ToArray());
                _counts.Add(0);
            }

            _counts[index]++;
        }
    }

    /// <summary>Runs the merges until the vocabulary (specials + 256 bytes + merges) reaches <paramref name="vocabularySize"/>.</summary>
    /// <returns>The merges in order, as pairs of symbol strings in the byte-level alphabet.</returns>
    public BpeModel Train(int vocabularySize)
    {
        var baseSize = SpecialTokens.Count + 256;
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabularySize, baseSize);

        // Symbols: 0..255 are bytes; merged symbols get 256, 257, ...
        var symbols = new List<string>(vocabularySize);
        for (var b = 0; b < 256; b++) symbols.Add(ByteLevelAlphabet.ByteToChar((byte)b).ToString());

        var pairCounts = new Dictionary<(int, int), long>();
        var pairWords = new Dictionary<(int, int), HashSet<int>>();
        for (var w = 0; w < _words.Count; w++)
        {
            AddPairs(w, +1);
        }

        var merges = new List<(int Left, int Right)>();
        while (baseSize + merges.Count < vocabularySize)
        {
            var best = default((int, int));
            long bestCount = 0;
            string? bestString = null;
            foreach (var (pair, count) in pairCounts)
            {
                if (count < bestCount || count == 0)
                {
                    continue;
                }

                var merged = symbols[pair.Item1] + symbols[pair.Item2];
                if (count > bestCount || string.CompareOrdinal(merged, bestString) < 0)
                {
                    best = pair;
                    bestCount = count;
                    bestString = merged;
                }
            }

            if (bestCount == 0)
            {
                break; // every word is a single symbol: nothing left to merge
            }

            var newSymbol = symbols.Count;
            symbols.Add(bestString!);
            merges.Add(best);
            foreach (var w in pairWords[best].ToArray())
            {
                AddPairs(w, -1);
                _words[w] = MergeWord(_words[w], best, newSymbol);
                AddPairs(w, +1);
            }
        }

        return new BpeModel(SpecialTokens, symbols, merges);

        void AddPairs(int w, int sign)
        {
            var word = _words[w];
            var count = _counts[w] * sign;
            for (var i = 0; i + 1 < word.Length; i++)
            {
                var pair = (word[i], word[i + 1]);
                var updated = pairCounts.GetValueOrDefault(pair) + count;
                if (updated == 0)
                {
                    pairCounts.Remove(pair);
                }
                else
                {
                    pairCounts[pair] = updated;
                }

                if (sign > 0)
                {
                    if (!pairWords.TryGetValue(pair, out var set))
                    {
                        pairWords[pair] = set = [];
                    }

                    set.Add(w);
                }
                else if (pairWords.TryGetValue(pair, out var set))
                {
                    set.Remove(w);
                }
            }
        }
    }

    private static int[] MergeWord(int[] word, (int Left, int Right) pair, int symbol)
    {
        var result = new List<int>(word.Length);
        for (var i = 0; i < word.Length; i++)
        {
            if (i + 1 < word.Length && word[i] == pair.Left && word[i + 1] == pair.Right)
            {
                result.Add(symbol);
                i++;
            }
            else
            {
                result.Add(word[i]);
            }
        }

        return result.ToArray();
    }

    /// <summary>The trained words' final segmentation, as token ids of <paramref name="model"/> (for checking encoders).</summary>
    internal IEnumerable<(string Word, int[] Ids)> Segmentations(BpeModel model)
    {
        foreach (var (word, index) in _wordIndex)
        {
            yield return (word, _words[index].Select(model.SymbolToId).ToArray());
        }
    }
}
