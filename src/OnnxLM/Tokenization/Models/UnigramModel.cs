using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// A Unigram language model (tokenizer.json <c>"type": "Unigram"</c>, or a SentencePiece UNIGRAM .model): each word
/// is split by Viterbi into the pieces with the best total score, found with a trie. Characters no piece covers are
/// unknown (scored min_score - 10), runs of them are fused into one unknown token and, with byte fallback, become
/// their UTF-8 byte pieces. Ties keep the first best path found, as Hugging Face's encode_optimized and
/// SentencePiece's EncodeOptimized both do. Thread-safe once built.
/// </summary>
internal sealed class UnigramModel : ITokenModel
{
    /// <summary>kUnkPenalty of both implementations.</summary>
    private const double UnknownPenalty = 10.0;

    private readonly string[] _pieces;
    private readonly double[] _scores;
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _idLookup;
    private readonly int? _unkId;
    private readonly bool _byteFallback;
    private readonly int[] _byteIds = new int[256];

    // The trie: children by (node << 16 | char), the vocabulary id ending at each node (-1 for none).
    private readonly Dictionary<long, int> _children = [];
    private readonly List<int> _nodeIds = [-1];

    // SentencePiece mode: float arithmetic, per-id kinds, ids taken from the trie rather than looked up again.
    private readonly bool _sentencePiece;
    private readonly bool[]? _unused;
    private readonly bool[]? _userDefined;
    private readonly float _maxScore;
    private readonly double _unknownScore;

    /// <summary>Hugging Face's Unigram: every entry is matchable and min_score is over the whole vocabulary.</summary>
    /// <param name="vocab">The pieces and their scores (log probabilities), in id order.</param>
    /// <param name="unkId">The unknown token's id; without one, text with an unknown character cannot be encoded.</param>
    /// <param name="byteFallback">Whether an unknown run becomes its <c>&lt;0xXX&gt;</c> byte pieces when all exist.</param>
    public UnigramModel(IReadOnlyList<(string Piece, double Score)> vocab, int? unkId, bool byteFallback)
        : this(vocab, unkId, byteFallback, null)
    {
    }

    private UnigramModel(IReadOnlyList<(string Piece, double Score)> vocab, int? unkId, bool byteFallback, SentencePieceModelFile.PieceType[]? types)
    {
        if (unkId is int u && (u < 0 || u >= vocab.Count))
        {
            throw new ArgumentOutOfRangeException(nameof(unkId), unkId, $"The unknown token id is not in the vocabulary of {vocab.Count} pieces.");
        }

        _idLookup = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
        _pieces = new string[vocab.Count];
        _scores = new double[vocab.Count];
        _unkId = unkId;
        _byteFallback = byteFallback;
        _sentencePiece = types is not null;
        var minScore = double.PositiveInfinity;
        var minNormal = float.MaxValue;
        // SentencePiece starts max_score_ at FLT_MIN, the smallest positive normal float: with only negative scores
        // a user-defined piece then scores about -0.1.
        var maxNormal = 1.17549435E-38f;
        if (types is not null)
        {
            _unused = new bool[vocab.Count];
            _userDefined = new bool[vocab.Count];
        }

        for (var id = 0; id < vocab.Count; id++)
        {
            var (piece, score) = vocab[id];
            _pieces[id] = piece;
            _scores[id] = types is null ? score : (float)score;
            minScore = Math.Min(minScore, score);
            if (types is null)
            {
                // Hugging Face keeps the last id of a duplicated piece, and its trie finds that one.
                _ids[piece] = id;
                Insert(piece, -1);
                continue;
            }

            var type = types[id];
            if (type == SentencePieceModelFile.PieceType.Normal)
            {
                minNormal = Math.Min(minNormal, (float)score);
                maxNormal = Math.Max(maxNormal, (float)score);
            }

            // SentencePiece's PieceToId, used for byte pieces, knows every piece; its trie holds only the
            // normal, user-defined and unused ones, and the first of a duplicate (it rejects duplicates anyway).
            _ids.TryAdd(piece, id);
            if (type is SentencePieceModelFile.PieceType.Normal or SentencePieceModelFile.PieceType.UserDefined or SentencePieceModelFile.PieceType.Unused)
            {
                Insert(piece, id);
                _unused![id] = type == SentencePieceModelFile.PieceType.Unused;
                _userDefined![id] = type == SentencePieceModelFile.PieceType.UserDefined;
            }
        }

        if (types is null)
        {
            // Fill the trie's ids now that duplicates are resolved.
            foreach (var (piece, id) in _ids)
            {
                _nodeIds[Find(piece)] = id;
            }

            _unknownScore = minScore - UnknownPenalty;
        }
        else
        {
            _maxScore = maxNormal;
            _unknownScore = (float)(minNormal - (float)UnknownPenalty);
        }

        for (var b = 0; b < 256; b++)
        {
            _byteIds[b] = _ids.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
        }
    }

    /// <summary>
    /// SentencePiece's unigram_model.cc: control, unknown and byte pieces are never matched, unused ones are skipped,
    /// user-defined ones score length-in-bytes × max_score − 0.1 so that they win, path scores are floats, and an
    /// unknown run with byte fallback always becomes its byte pieces.
    /// </summary>
    public static UnigramModel ForSentencePiece(IReadOnlyList<(string Piece, double Score)> vocab, SentencePieceModelFile.PieceType[] types, int unkId, bool byteFallback) =>
        new(vocab, unkId, byteFallback, types);

    public int VocabularySize => _pieces.Length;

    public string? IdToToken(int id) => (uint)id < (uint)_pieces.Length ? _pieces[id] : null;

    public int? TokenToId(string token) => _ids.TryGetValue(token, out var id) ? id : null;

    public void Tokenize(string word, List<int> ids, List<int>? ends)
    {
        if (word.Length == 0)
        {
            return;
        }

        var n = word.Length;
        var bestScore = new double[n + 1];
        var bestStart = new int[n + 1];
        var bestId = new int[n + 1];
        Array.Fill(bestStart, -1);
        var start = 0;
        while (start < n)
        {
            var tillHere = bestScore[start];
            var charLength = start + 1 < n && char.IsSurrogatePair(word[start], word[start + 1]) ? 2 : 1;
            var hasSingle = false;
            var node = 0;
            for (var i = start; i < n; i++)
            {
                if (!_children.TryGetValue(((long)node << 16) | word[i], out node))
                {
                    break;
                }

                var id = _nodeIds[node];
                if (id < 0 || (_unused is not null && _unused[id]))
                {
                    continue;
                }

                var end = i + 1;
                double candidate;
                if (_sentencePiece && _userDefined![id])
                {
                    // C++: (size_t bytes * float max_score_) - 0.1, a double.
                    var bytes = Encoding.UTF8.GetByteCount(word.AsSpan(start, end - start));
                    candidate = (double)(bytes * _maxScore) - 0.1 + tillHere;
                }
                else
                {
                    // In SentencePiece too the sum is a double (the score's conditional expression has type double),
                    // compared with the float stored at the target and only then rounded to float.
                    candidate = _scores[id] + tillHere;
                }

                if (bestStart[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = _sentencePiece ? (float)candidate : candidate;
                    bestStart[end] = start;
                    bestId[end] = id;
                }

                if (end - start == charLength)
                {
                    hasSingle = true;
                }
            }

            if (!hasSingle)
            {
                var end = start + charLength;
                var candidate = _sentencePiece ? (float)((float)_unknownScore + (float)tillHere) : _unknownScore + tillHere;
                if (bestStart[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    bestStart[end] = start;
                    bestId[end] = _unkId ?? throw new InvalidOperationException($"The Unigram model has no unknown token for the character at {start} of \"{word}\".");
                }
            }

            start += charLength;
        }

        // Backtrack into (start, end, id) segments, first to last.
        var segments = new List<(int Start, int End, int Id)>();
        for (var end = n; end > 0; end = bestStart[end])
        {
            segments.Add((bestStart[end], end, bestId[end]));
        }

        segments.Reverse();
        var k = 0;
        while (k < segments.Count)
        {
            var (segStart, segEnd, id) = segments[k++];
            if (id == _unkId)
            {
                // Both implementations fuse a run of unknown pieces into one (Hugging Face in the model,
                // SentencePiece when it builds its result); in Hugging Face a matched "<unk>" piece fuses too.
                while (k < segments.Count && segments[k].Id == _unkId)
                {
                    segEnd = segments[k++].End;
                }
            }

            EmitToken(word, segStart, segEnd, id, ids, ends);
        }
    }

    private void EmitToken(string word, int start, int end, int id, List<int> ids, List<int>? ends)
    {
        var text = word.AsSpan(start, end - start);
        if (!_sentencePiece)
        {
            // Hugging Face maps each resulting string back through its vocabulary.
            if (_idLookup.TryGetValue(text, out var found))
            {
                Add(found, end);
                return;
            }
        }
        else if (id != _unkId)
        {
            Add(id, end);
            return;
        }

        if (_byteFallback && TryByteFallback(text, start, end, ids, ends))
        {
            return;
        }

        Add(_unkId!.Value, end);

        void Add(int tokenId, int tokenEnd)
        {
            ids.Add(tokenId);
            ends?.Add(tokenEnd);
        }
    }

    /// <summary>The UTF-8 bytes of an unknown run as byte pieces, when all of them exist; the last one carries the run's end.</summary>
    private bool TryByteFallback(ReadOnlySpan<char> text, int start, int end, List<int> ids, List<int>? ends)
    {
        Span<byte> buffer = text.Length <= 64 ? stackalloc byte[256] : new byte[Encoding.UTF8.GetMaxByteCount(text.Length)];
        var count = Encoding.UTF8.GetBytes(text, buffer);
        for (var i = 0; i < count; i++)
        {
            if (_byteIds[buffer[i]] < 0)
            {
                return false;
            }
        }

        for (var i = 0; i < count; i++)
        {
            ids.Add(_byteIds[buffer[i]]);
            ends?.Add(i == count - 1 ? end : start);
        }

        return true;
    }

    private void Insert(string piece, int id)
    {
        var node = 0;
        foreach (var c in piece)
        {
            var key = ((long)node << 16) | c;
            if (!_children.TryGetValue(key, out var child))
            {
                child = _nodeIds.Count;
                _nodeIds.Add(-1);
                _children[key] = child;
            }

            node = child;
        }

        if (id >= 0 && _nodeIds[node] < 0)
        {
            _nodeIds[node] = id;
        }
    }

    private int Find(string piece)
    {
        var node = 0;
        foreach (var c in piece)
        {
            node = _children[((long)node << 16) | c];
        }

        return node;
    }
}
