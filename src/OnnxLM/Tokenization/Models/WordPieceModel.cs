namespace OnnxLM.Tokenization;

/// <summary>
/// BERT's WordPiece: the longest vocabulary entry from the start of the word, then the longest continuation (with
/// the "##" prefix) from where it ended, and so on; a word that cannot be covered, or is longer than
/// <c>max_input_chars_per_word</c> characters, becomes one unknown token.
/// </summary>
internal sealed class WordPieceModel : ITokenModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly string?[] _idToToken;
    private readonly int _unkId;
    private readonly string _prefix;
    private readonly int _maxChars;

    public WordPieceModel(Dictionary<string, int> vocab, string unkToken, string continuingSubwordPrefix, int maxInputCharsPerWord, string source)
    {
        _vocab = vocab;
        _lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        VocabularySize = vocab.Count == 0 ? 0 : vocab.Values.Max() + 1;
        _idToToken = new string?[VocabularySize];
        foreach (var (token, id) in vocab) _idToToken[id] = token;
        _unkId = vocab.TryGetValue(unkToken, out var unk)
            ? unk
            : throw new ModelFormatException($"Tokenizer file '{source}' names the unknown token '{unkToken}' (model.unk_token), which is not in model.vocab.", source);
        _prefix = continuingSubwordPrefix;
        _maxChars = maxInputCharsPerWord;
    }

    public int VocabularySize { get; }

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : null;

    public void Tokenize(string word, List<int> ids, List<int>? ends)
    {
        if (word.Length == 0)
        {
            return;
        }

        var chars = 0;
        for (var i = 0; i < word.Length; i += char.IsSurrogatePair(word, i) ? 2 : 1) chars++;
        if (chars > _maxChars)
        {
            ids.Add(_unkId);
            ends?.Add(word.Length);
            return;
        }

        var firstId = ids.Count;
        var firstEnd = ends?.Count ?? 0;
        var buffer = new char[_prefix.Length + word.Length];
        _prefix.CopyTo(buffer);
        for (var start = 0; start < word.Length;)
        {
            var found = -1;
            var end = word.Length;
            while (start < end)
            {
                ReadOnlySpan<char> candidate;
                if (start > 0)
                {
                    word.AsSpan(start, end - start).CopyTo(buffer.AsSpan(_prefix.Length));
                    candidate = buffer.AsSpan(0, _prefix.Length + end - start);
                }
                else
                {
                    candidate = word.AsSpan(0, end);
                }

                if (_lookup.TryGetValue(candidate, out found))
                {
                    break;
                }

                found = -1;
                end -= end >= 2 && char.IsSurrogatePair(word[end - 2], word[end - 1]) ? 2 : 1;
            }

            if (found < 0)
            {
                ids.RemoveRange(firstId, ids.Count - firstId);
                ends?.RemoveRange(firstEnd, ends.Count - firstEnd);
                ids.Add(_unkId);
                ends?.Add(word.Length);
                return;
            }

            ids.Add(found);
            ends?.Add(end);
            start = end;
        }
    }
}
