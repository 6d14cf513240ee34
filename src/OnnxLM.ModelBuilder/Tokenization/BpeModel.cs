using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnnxLM.ModelBuilder.Tokenization;

/// <summary>
/// A trained byte-level BPE vocabulary: special tokens first, then the 256 byte symbols, then one symbol per
/// merge. Writes a Hugging Face <c>tokenizer.json</c> (ByteLevel pre-tokenizer with GPT-2's split regex,
/// ByteLevel decoder, BPE model with vocab and merges, special tokens as added tokens).
/// </summary>
public sealed class BpeModel
{
    private readonly List<string> _symbols;

    internal BpeModel(IReadOnlyList<string> specialTokens, List<string> symbols, List<(int Left, int Right)> merges)
    {
        SpecialTokens = specialTokens;
        _symbols = symbols;
        Merges = merges.Select(m => (symbols[m.Left], symbols[m.Right])).ToArray();
    }

    /// <summary>Special tokens, holding ids 0 .. count-1.</summary>
    public IReadOnlyList<string> SpecialTokens { get; }

    /// <summary>Merges in the order they were learned (rank 0 first).</summary>
    public IReadOnlyList<(string Left, string Right)> Merges { get; }

    /// <summary>Total vocabulary size.</summary>
    public int VocabularySize => SpecialTokens.Count + _symbols.Count;

    /// <summary>The token id of a trainer symbol (byte or merge).</summary>
    internal int SymbolToId(int symbol) => SpecialTokens.Count + symbol;

    /// <summary>The string of token <paramref name="id"/>.</summary>
    public string TokenString(int id) => id < SpecialTokens.Count ? SpecialTokens[id] : _symbols[id - SpecialTokens.Count];

    /// <summary>
    /// Encodes one pre-tokenized word by applying merges lowest rank first (the Hugging Face BPE algorithm).
    /// </summary>
    internal int[] EncodeWord(string word)
    {
        _ranks ??= BuildRanks();
        _ids ??= Enumerable.Range(0, VocabularySize).ToDictionary(TokenString, id => id, StringComparer.Ordinal);
        var parts = ByteLevelAlphabet.Encode(System.Text.Encoding.UTF8.GetBytes(word)).Select(c => c.ToString()).ToList();
        while (parts.Count > 1)
        {
            var bestRank = int.MaxValue;
            var bestAt = -1;
            for (var i = 0; i + 1 < parts.Count; i++)
            {
                if (_ranks.TryGetValue((parts[i], parts[i + 1]), out var rank) && rank < bestRank)
                {
                    bestRank = rank;
                    bestAt = i;
                }
            }

            if (bestAt < 0)
            {
                break;
            }

            var (left, right) = Merges[bestRank];
            for (var i = 0; i + 1 < parts.Count; i++)
            {
                if (parts[i] == left && parts[i + 1] == right)
                {
                    parts[i] = left + right;
                    parts.RemoveAt(i + 1);
                }
            }
        }

        return parts.Select(p => _ids[p]).ToArray();
    }

    private Dictionary<(string, string), int>? _ranks;
    private Dictionary<string, int>? _ids;

    private Dictionary<(string, string), int> BuildRanks()
    {
        var ranks = new Dictionary<(string, string), int>();
        for (var i = 0; i < Merges.Count; i++)
        {
            ranks.TryAdd(Merges[i], i);
        }

        return ranks;
    }

    /// <summary>Writes <c>tokenizer.json</c> and <c>tokenizer_config.json</c> into <paramref name="folder"/>.</summary>
    /// <param name="folder">The output folder (created if missing).</param>
    /// <param name="bosToken">The special token used as BOS (also set as EOS when <paramref name="eosToken"/> is null).</param>
    /// <param name="eosToken">The special token used as EOS.</param>
    public void Save(string folder, string? bosToken, string? eosToken)
    {
        Directory.CreateDirectory(folder);
        var vocab = new JsonObject();
        for (var id = 0; id < VocabularySize; id++)
        {
            vocab[TokenString(id)] = id;
        }

        var added = new JsonArray();
        for (var id = 0; id < SpecialTokens.Count; id++)
        {
            added.Add(new JsonObject
            {
                ["id"] = id, ["content"] = SpecialTokens[id], ["single_word"] = false, ["lstrip"] = false,
                ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            });
        }

        var merges = new JsonArray();
        foreach (var (left, right) in Merges)
        {
            merges.Add(left + " " + right);
        }

        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            // GPT-2's setup: the ByteLevel pre-tokenizer with use_regex splits with the same pattern the trainer used.
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = merges,
            },
        };

        var options = new System.Text.Json.JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), root.ToJsonString(options));

        var config = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["add_bos_token"] = bosToken is not null,
            ["add_eos_token"] = false,
            ["bos_token"] = bosToken,
            ["eos_token"] = eosToken ?? bosToken,
            ["model_max_length"] = 1000000,
            ["clean_up_tokenization_spaces"] = false,
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString(options));
    }
}
