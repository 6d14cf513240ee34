namespace OnnxLM;

// TEMPORARY compile stand-in for the tokenizer being written on branch `tok`; replaced at merge.
/// <summary>Tokenizer (stand-in).</summary>
public sealed class TextTokenizer
{
    /// <summary>Loads.</summary>
    public static TextTokenizer FromFolder(string folder, TokenizerOptions? options = null) => new();
    /// <summary>Vocab.</summary>
    public int VocabularySize => 0;
    /// <summary>BOS.</summary>
    public int? BosTokenId => null;
    /// <summary>EOS.</summary>
    public IReadOnlyList<int> EosTokenIds => [];
    /// <summary>BOS added.</summary>
    public bool AddBosToken => false;
    /// <summary>Encode.</summary>
    public int[] Encode(string text, bool? addBos = null) => throw new NotImplementedException();
    /// <summary>Decode.</summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false) => "";
    /// <summary>Piece.</summary>
    public string TokenToPiece(int id) => throw new NotImplementedException();
    /// <summary>Special.</summary>
    public bool IsSpecialToken(int id) => false;
    /// <summary>Streaming.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new();
}
/// <summary>Options (stand-in).</summary>
public sealed class TokenizerOptions
{
    /// <summary>BOS.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>EOS.</summary>
    public IReadOnlyList<int>? EosTokenIds { get; init; }
    /// <summary>PAD.</summary>
    public int? PadTokenId { get; init; }
    /// <summary>Add BOS.</summary>
    public bool? AddBosToken { get; init; }
}
/// <summary>Streaming (stand-in).</summary>
public sealed class StreamingDecoder
{
    /// <summary>Append.</summary>
    public string Append(int id) => "";
    /// <summary>Flush.</summary>
    public string Flush() => "";
}
