using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// SentencePiece's BPE model (bpe_model.cc): the text starts as characters (a user-defined piece as one frozen
/// symbol) and the adjacent pair whose concatenation is a piece with the highest score is merged, leftmost first on
/// ties, until none is left. Merges into unused pieces are undone at the end. Then, as SentencePiece builds its
/// result, a run of unknown symbols becomes one unknown token, or with byte fallback its UTF-8 byte pieces.
/// Thread-safe once built.
/// </summary>
internal sealed class SentencePieceBpeModel : ITokenModel
{
    private readonly string[] _pieces;
    private readonly float[] _scores;
    private readonly bool[] _unused;
    private readonly bool _hasUnused;

    // pieces_ (normal, user-defined, unused) and reserved_id_map_ (control, unknown, byte) of model_interface.cc.
    private readonly Dictionary<string, int> _normal = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _reserved = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _normalLookup;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _reservedLookup;
    private readonly int _unkId;
    private readonly bool _byteFallback;
    private readonly int[] _byteIds = new int[256];

    // A trie of the user-defined pieces, which are matched longest first and never merged.
    private readonly Dictionary<long, int> _userChildren = [];
    private readonly List<bool> _userEnds = [false];

    /// <param name="vocab">The pieces and scores, in id order.</param>
    /// <param name="types">The SentencePiece type of each piece.</param>
    /// <param name="unkId">The id of the unknown piece.</param>
    /// <param name="byteFallback">trainer_spec.byte_fallback: unknown characters become byte pieces.</param>
    public SentencePieceBpeModel(IReadOnlyList<(string Piece, double Score)> vocab, SentencePieceModelFile.PieceType[] types, int unkId, bool byteFallback)
    {
        _pieces = new string[vocab.Count];
        _scores = new float[vocab.Count];
        _unused = new bool[vocab.Count];
        _unkId = unkId;
        _byteFallback = byteFallback;
        for (var id = 0; id < vocab.Count; id++)
        {
            var (piece, score) = vocab[id];
            _pieces[id] = piece;
            _scores[id] = (float)score;
            var type = types[id];
            if (type is SentencePieceModelFile.PieceType.Normal or SentencePieceModelFile.PieceType.UserDefined or SentencePieceModelFile.PieceType.Unused)
            {
                _normal.TryAdd(piece, id);
                _unused[id] = type == SentencePieceModelFile.PieceType.Unused;
                _hasUnused |= _unused[id];
                if (type == SentencePieceModelFile.PieceType.UserDefined)
                {
                    InsertUserDefined(piece);
                }
            }
            else
            {
                _reserved.TryAdd(piece, id);
            }
        }

        _normalLookup = _normal.GetAlternateLookup<ReadOnlySpan<char>>();
        _reservedLookup = _reserved.GetAlternateLookup<ReadOnlySpan<char>>();
        for (var b = 0; b < 256; b++)
        {
            _byteIds[b] = PieceToId($"<0x{b:X2}>");
        }
    }

    public int VocabularySize => _pieces.Length;

    public string? IdToToken(int id) => (uint)id < (uint)_pieces.Length ? _pieces[id] : null;

    public int? TokenToId(string token) =>
        _reserved.TryGetValue(token, out var id) || _normal.TryGetValue(token, out id) ? id : null;

    public void Tokenize(string word, List<int> ids, List<int>? ends)
    {
        if (word.Length == 0)
        {
            return;
        }

        // Symbols: start and length in the word, linked list neighbours, and whether they may merge.
        var count = 0;
        var starts = new int[word.Length];
        var lengths = new int[word.Length];
        var frozen = new bool[word.Length];
        for (var position = 0; position < word.Length; count++)
        {
            var length = MatchUserDefined(word, position);
            frozen[count] = length > 0;
            if (length == 0)
            {
                length = position + 1 < word.Length && char.IsSurrogatePair(word[position], word[position + 1]) ? 2 : 1;
            }

            starts[count] = position;
            lengths[count] = length;
            position += length;
        }

        var prev = new int[count];
        var next = new int[count];
        for (var i = 0; i < count; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < count ? i + 1 : -1;
        }

        var agenda = new PriorityQueue<(int Left, int Right, int Size), (float Score, int Left)>(count, PairOrder.Instance);
        Dictionary<string, (string Left, string Right)>? reverseMerges = _hasUnused ? new(StringComparer.Ordinal) : null;

        void MaybeAdd(int left, int right)
        {
            if (left == -1 || right == -1 || frozen[left] || frozen[right])
            {
                return;
            }

            var size = lengths[left] + lengths[right];
            var merged = word.AsSpan(starts[left], size);
            if (!_normalLookup.TryGetValue(merged, out var id))
            {
                return;
            }

            agenda.Enqueue((left, right, size), (_scores[id], left));
            if (_unused[id])
            {
                // Kept for undoing the merge at the end; a later merge into the same piece replaces it, as in bpe_model.cc.
                reverseMerges![merged.ToString()] = (word.Substring(starts[left], lengths[left]), word.Substring(starts[right], lengths[right]));
            }
        }

        for (var i = 1; i < count; i++)
        {
            MaybeAdd(i - 1, i);
        }

        while (agenda.TryDequeue(out var top, out _))
        {
            // A pair whose symbols changed since it was queued is stale.
            if (lengths[top.Left] == 0 || lengths[top.Right] == 0 || lengths[top.Left] + lengths[top.Right] != top.Size)
            {
                continue;
            }

            lengths[top.Left] += lengths[top.Right];
            next[top.Left] = next[top.Right];
            if (next[top.Right] >= 0)
            {
                prev[next[top.Right]] = top.Left;
            }

            lengths[top.Right] = 0;
            MaybeAdd(prev[top.Left], top.Left);
            MaybeAdd(top.Left, next[top.Left]);
        }

        // Resegment, then fuse unknown runs or turn them into bytes, as PopulateSentencePieceText does.
        var output = new List<(int Start, int End, int Id)>();
        for (var index = 0; index != -1; index = next[index])
        {
            Resegment(word, starts[index], lengths[index], reverseMerges, output);
        }

        var k = 0;
        while (k < output.Count)
        {
            var (start, end, id) = output[k++];
            if (id != _unkId)
            {
                ids.Add(id);
                ends?.Add(end);
                continue;
            }

            while (k < output.Count && output[k].Id == _unkId)
            {
                end = output[k++].End;
            }

            if (_byteFallback && TryByteFallback(word.AsSpan(start, end - start), start, end, ids, ends))
            {
                continue;
            }

            ids.Add(_unkId);
            ends?.Add(end);
        }
    }

    private void Resegment(string word, int start, int length, Dictionary<string, (string Left, string Right)>? reverseMerges, List<(int, int, int)> output)
    {
        var piece = word.AsSpan(start, length);
        var id = PieceToId(piece);
        if (reverseMerges is null || !_unused[id] || !reverseMerges.TryGetValue(piece.ToString(), out var parts))
        {
            output.Add((start, start + length, id));
            return;
        }

        Resegment(word, start, parts.Left.Length, reverseMerges, output);
        Resegment(word, start + parts.Left.Length, parts.Right.Length, reverseMerges, output);
    }

    /// <summary>model_interface.cc's PieceToId: reserved pieces first, then the others, else the unknown id.</summary>
    private int PieceToId(ReadOnlySpan<char> piece) =>
        _reservedLookup.TryGetValue(piece, out var id) || _normalLookup.TryGetValue(piece, out id) ? id : _unkId;

    private bool TryByteFallback(ReadOnlySpan<char> text, int start, int end, List<int> ids, List<int>? ends)
    {
        var bytes = new byte[Encoding.UTF8.GetMaxByteCount(text.Length)];
        var count = Encoding.UTF8.GetBytes(text, bytes);
        for (var i = 0; i < count; i++)
        {
            // SentencePiece checks at load time that all 256 byte pieces exist when byte fallback is on.
            if (_byteIds[bytes[i]] == _unkId)
            {
                return false;
            }
        }

        for (var i = 0; i < count; i++)
        {
            ids.Add(_byteIds[bytes[i]]);
            ends?.Add(i == count - 1 ? end : start);
        }

        return true;
    }

    private void InsertUserDefined(string piece)
    {
        var node = 0;
        foreach (var c in piece)
        {
            var key = ((long)node << 16) | c;
            if (!_userChildren.TryGetValue(key, out var child))
            {
                child = _userEnds.Count;
                _userEnds.Add(false);
                _userChildren[key] = child;
            }

            node = child;
        }

        _userEnds[node] = true;
    }

    /// <summary>Length of the longest user-defined piece at <paramref name="position"/>, 0 when none.</summary>
    private int MatchUserDefined(string word, int position)
    {
        if (_userChildren.Count == 0)
        {
            return 0;
        }

        var longest = 0;
        var node = 0;
        for (var i = position; i < word.Length; i++)
        {
            if (!_userChildren.TryGetValue(((long)node << 16) | word[i], out node))
            {
                break;
            }

            if (_userEnds[node])
            {
                longest = i + 1 - position;
            }
        }

        return longest;
    }

    /// <summary>bpe_model.cc's agenda order: the higher score first, then the leftmost pair.</summary>
    private sealed class PairOrder : IComparer<(float Score, int Left)>
    {
        public static readonly PairOrder Instance = new();

        public int Compare((float Score, int Left) x, (float Score, int Left) y)
        {
            if (x.Score != y.Score)
            {
                return x.Score > y.Score ? -1 : 1;
            }

            return x.Left.CompareTo(y.Left);
        }
    }
}
