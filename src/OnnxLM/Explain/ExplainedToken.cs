namespace OnnxLM.Explain;

/// <summary>A token of the text: id, vocabulary piece, the text it covers and where (UTF-16 and UTF-8 offsets).</summary>
public sealed record ExplainedToken(int Id, string Piece, string Text, int Start, int Length, int ByteStart, int ByteLength, bool IsSpecial);
