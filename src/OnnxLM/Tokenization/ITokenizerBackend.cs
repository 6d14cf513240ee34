namespace OnnxLM;

/// <summary>One tokenizer file format behind <see cref="TextTokenizer"/>: encodes without BOS/EOS and decodes ids.</summary>
internal interface ITokenizerBackend
{
    int VocabularySize { get; }

    void Encode(string text, List<int> output);

    /// <summary>Decodes ids; <paramref name="continuation"/> keeps a leading space a SentencePiece decoder would strip at the start of a text.</summary>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens, bool continuation = false);

    string TokenToPiece(int id);

    int? PieceToId(string piece);

    bool IsSpecialToken(int id);

    /// <summary>Whether BOS is added by default for this tokenizer family when tokenizer_config.json does not say.</summary>
    bool AddsBosByDefault { get; }
}
