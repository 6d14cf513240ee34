namespace OnnxLM.Tokenization;

/// <summary>A tokenizer.json normalizer: rewrites a text before it is split (Unicode forms, lowercasing, replacements).</summary>
internal interface INormalizer
{
    NormalizedText Normalize(NormalizedText text);
}

/// <summary>A tokenizer.json pre-tokenizer: splits (and may rewrite) the normalized text into words for the model.</summary>
internal interface IPreTokenizer
{
    /// <summary>Splits every piece of <paramref name="pieces"/> in place, keeping their order.</summary>
    void PreTokenize(List<NormalizedText> pieces);
}

/// <summary>A tokenizer.json model (BPE, WordPiece, Unigram, WordLevel): turns one word into token ids.</summary>
internal interface ITokenModel
{
    /// <summary>Appends the ids of <paramref name="word"/> and, when <paramref name="ends"/> is given, where each token ends in it.</summary>
    void Tokenize(string word, List<int> ids, List<int>? ends);

    /// <summary>The vocabulary entry of an id, or null.</summary>
    string? IdToToken(int id);

    /// <summary>The id of a vocabulary entry, or null.</summary>
    int? TokenToId(string token);

    /// <summary>One past the largest id of the vocabulary.</summary>
    int VocabularySize { get; }
}

/// <summary>A tokenizer.json post-processor: adds the special tokens around an encoded sequence.</summary>
internal interface IPostProcessor
{
    void Process(List<EncodedToken> tokens, bool addSpecialTokens);
}

/// <summary>A tokenizer.json decoder: turns token strings back into text, as a chain of list-to-list steps.</summary>
internal interface ITokenDecoder
{
    /// <summary>
    /// Rewrites the token strings in place (the list may shrink). <paramref name="continuation"/>: the tokens continue
    /// earlier text, so rules for the start of a text (strip the prefix space) do not apply.
    /// </summary>
    void Decode(List<string> tokens, bool continuation);
}
