using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace OnnxLM;

/// <summary>A SentencePiece <c>tokenizer.model</c> read and encoded by Microsoft.ML.Tokenizers; decoded here so streaming can share the rules.</summary>
internal sealed class SentencePieceBackend : ITokenizerBackend
{
    private readonly SentencePieceTokenizer _tokenizer;
    private readonly string[] _pieces;
    private readonly HashSet<int> _special = [];
    private readonly Dictionary<string, int> _ids;
    private readonly bool _nmtNfkc;

    public SentencePieceBackend(string file)
    {
        try
        {
            var proto = File.ReadAllBytes(file);
            _tokenizer = SentencePieceTokenizer.Create(new MemoryStream(proto), addBeginningOfSentence: false, addEndOfSentence: false);
            _nmtNfkc = ReadNormalizerName(proto) is "nmt_nfkc" or "nmt_nfkc_cf";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ModelFormatException($"Tokenizer file '{file}' is not a readable SentencePiece model: {e.Message}", file, e);
        }

        _ids = new Dictionary<string, int>(_tokenizer.Vocabulary, StringComparer.Ordinal);
        _pieces = new string[_ids.Values.Max() + 1];
        foreach (var (piece, id) in _ids) _pieces[id] = piece;
        foreach (var id in new[] { _tokenizer.BeginningOfSentenceId, _tokenizer.EndOfSentenceId, _tokenizer.UnknownId })
        {
            if (id >= 0) _special.Add(id);
        }
    }

    public int VocabularySize => _pieces.Length;

    public bool AddsBosByDefault => true;

    public int? BosTokenId => _tokenizer.BeginningOfSentenceId >= 0 ? _tokenizer.BeginningOfSentenceId : null;

    public int? EosTokenId => _tokenizer.EndOfSentenceId >= 0 ? _tokenizer.EndOfSentenceId : null;

    public void Encode(string text, List<int> output)
    {
        if (_nmtNfkc)
        {
            // The library keeps a lone ▁ for whitespace-only text; SentencePiece, removing extra whitespace, encodes nothing.
            text = NmtNormalize(text);
            if (string.IsNullOrWhiteSpace(text))
            {
                return;
            }
        }

        if (text.Length > 0)
        {
            output.AddRange(_tokenizer.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false));
        }
    }

    /// <summary>
    /// SentencePiece's "nmt_nfkc" rule set, which Microsoft.ML.Tokenizers does not apply: NFKC, and ASCII control
    /// characters either become a space (tab, newlines) or are removed. The library then collapses whitespace.
    /// </summary>
    private static string NmtNormalize(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text.Normalize(NormalizationForm.FormKC))
        {
            if (c is '\t' or '\n' or '\r' or '\v' or '\f')
            {
                builder.Append(' ');
            }
            else if (c is >= ' ' and < '\u007F' || c > '\u009F')
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }

    /// <summary>Reads normalizer_spec.name (ModelProto field 3, NormalizerSpec field 1) from the serialized model.</summary>
    private static string? ReadNormalizerName(byte[] proto)
    {
        var span = proto.AsSpan();
        while (!span.IsEmpty)
        {
            var key = ReadVarint(ref span);
            var field = (int)(key >> 3);
            switch ((int)(key & 7))
            {
                case 0: ReadVarint(ref span); break;
                case 1: span = span[8..]; break;
                case 5: span = span[4..]; break;
                case 2:
                    var length = (int)ReadVarint(ref span);
                    var body = span[..length];
                    span = span[length..];
                    if (field == 3)
                    {
                        while (!body.IsEmpty)
                        {
                            var innerKey = ReadVarint(ref body);
                            if ((innerKey & 7) != 2) { if ((innerKey & 7) == 0) ReadVarint(ref body); else return null; continue; }
                            var innerLength = (int)ReadVarint(ref body);
                            if (innerKey >> 3 == 1) return Encoding.UTF8.GetString(body[..innerLength]);
                            body = body[innerLength..];
                        }
                    }

                    break;
                default: return null;
            }
        }

        return null;
    }

    private static ulong ReadVarint(ref Span<byte> span)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = span[0];
            span = span[1..];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens, bool continuation = false)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            var piece = TokenToPiece(id);
            if (piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>' &&
                byte.TryParse(piece.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                continue;
            }

            if (bytes.Count > 0)
            {
                text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
                bytes.Clear();
            }

            if (_special.Contains(id))
            {
                if (!skipSpecialTokens) text.Append(piece);
                continue;
            }

            text.Append(piece.Replace('\u2581', ' '));
        }

        if (bytes.Count > 0)
        {
            text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
        }

        // The dummy prefix space SentencePiece adds before the first piece is not part of the text.
        if (!continuation && _tokenizer.AddDummyPrefix && text.Length > 0 && text[0] == ' ')
        {
            text.Remove(0, 1);
        }

        return text.ToString();
    }

    public string TokenToPiece(int id) =>
        (uint)id < (uint)_pieces.Length && _pieces[id] is { } piece
            ? piece
            : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is not in the SentencePiece vocabulary of {_pieces.Length} ids.");

    public int? PieceToId(string piece) => _ids.TryGetValue(piece, out var id) ? id : null;

    public bool IsSpecialToken(int id) => _special.Contains(id);
}
