namespace OnnxLM;

/// <summary>One token of an encoded text: its id, its vocabulary entry, and the part of the original text it covers.</summary>
/// <param name="Id">The token id.</param>
/// <param name="Piece">The vocabulary entry ("Ġthe", "▁the", "&lt;0x0A&gt;", "[CLS]").</param>
/// <param name="Start">Offset of the first UTF-16 unit of the text the token came from.</param>
/// <param name="Length">Number of UTF-16 units of text it covers; 0 for special tokens the tokenizer added.</param>
public readonly record struct EncodedToken(int Id, string Piece, int Start, int Length)
{
    /// <summary>One past the last UTF-16 unit the token covers.</summary>
    public int End => Start + Length;
}
