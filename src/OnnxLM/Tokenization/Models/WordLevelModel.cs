namespace OnnxLM.Tokenization;

/// <summary>A word-level vocabulary: each pre-tokenized word is one token, or the unknown token.</summary>
internal sealed class WordLevelModel : ITokenModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _idToToken;
    private readonly int? _unkId;

    public WordLevelModel(Dictionary<string, int> vocab, string? unkToken, string source)
    {
        _vocab = vocab;
        VocabularySize = vocab.Count == 0 ? 0 : vocab.Values.Max() + 1;
        _idToToken = new string?[VocabularySize];
        foreach (var (token, id) in vocab) _idToToken[id] = token;
        if (unkToken is not null)
        {
            _unkId = vocab.TryGetValue(unkToken, out var unk)
                ? unk
                : throw new ModelFormatException($"Tokenizer file '{source}' names the unknown token '{unkToken}' (model.unk_token), which is not in model.vocab.", source);
        }
    }

    public int VocabularySize { get; }

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : null;

    public void Tokenize(string word, List<int> ids, List<int>? ends)
    {
        if (_vocab.TryGetValue(word, out var id))
        {
            ids.Add(id);
        }
        else if (_unkId is { } unk)
        {
            ids.Add(unk);
        }
        else
        {
            return;
        }

        ends?.Add(word.Length);
    }
}
