using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// Hugging Face's BPE model: a word starts as its characters (with the continuing-subword prefix and end-of-word
/// suffix where configured, unknown characters as byte-fallback pieces or one fused unknown token), then adjacent
/// pairs merge lowest rank first, leftmost first among equal ranks, through a priority queue (O(n log n) per word).
/// Results are cached per word; <c>ignore_merges</c> takes a word that is itself in the vocabulary whole.
/// </summary>
internal sealed class BpeModel : ITokenModel
{
    private const int CacheCapacity = 200_000;
    private const int MaxCachedWordLength = 256;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly string?[] _idToToken;
    private readonly Dictionary<long, (int Rank, int Merged)> _merges;
    private readonly int[] _charIds = new int[char.MaxValue + 1];
    private readonly int[] _byteIds = new int[256];
    private readonly int? _unkId;
    private readonly bool _fuseUnk;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly string? _prefix;
    private readonly string? _suffix;
    private readonly Dictionary<string, (int[] Ids, int[] Ends)> _cache = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (int[] Ids, int[] Ends)>.AlternateLookup<ReadOnlySpan<char>> _cacheLookup;
    private readonly Lock _cacheLock = new();

    /// <summary>
    /// For SentencePiece-style vocabularies (no pre-tokenizer, the whole text is one word): characters after which a
    /// "▁" may still continue a token. A "▁" after any other character starts a segment that merges on its own
    /// (null when segmenting is not exact for this vocabulary).
    /// </summary>
    private readonly bool[]? _joinsMetaspace;

    public BpeModel(Dictionary<string, int> vocab, IEnumerable<(string Left, string Right)> merges, string? unkToken = null,
        bool fuseUnk = false, bool byteFallback = false, bool ignoreMerges = false, string? continuingSubwordPrefix = null,
        string? endOfWordSuffix = null, string source = "tokenizer")
    {
        _vocab = vocab;
        _lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        VocabularySize = vocab.Count == 0 ? 0 : vocab.Values.Max() + 1;
        _idToToken = new string?[VocabularySize];
        foreach (var (token, id) in vocab)
        {
            if (id < 0)
            {
                throw new ModelFormatException($"Tokenizer file '{source}' gives the vocabulary entry '{token}' the negative id {id} (field model.vocab).", source);
            }

            _idToToken[id] = token;
        }

        _merges = new Dictionary<long, (int, int)>();
        var rank = 0;
        foreach (var (left, right) in merges)
        {
            if (!vocab.TryGetValue(left, out var l) || !vocab.TryGetValue(right, out var r))
            {
                throw new ModelFormatException(
                    $"Tokenizer file '{source}' has the merge \"{left} {right}\" (model.merges[{rank}]) naming a token that is not in model.vocab.", source);
            }

            // With a continuing-subword prefix the right part's prefix is not repeated inside the merged token.
            var merged = left + (continuingSubwordPrefix is { Length: > 0 } p && right.Length >= p.Length ? right[p.Length..] : right);
            if (!vocab.TryGetValue(merged, out var m))
            {
                throw new ModelFormatException(
                    $"Tokenizer file '{source}' has the merge \"{left} {right}\" (model.merges[{rank}]) whose result \"{merged}\" is not in model.vocab.", source);
            }

            _merges.TryAdd(Key(l, r), (rank, m));
            rank++;
        }

        if (unkToken is not null)
        {
            if (!vocab.TryGetValue(unkToken, out var unk))
            {
                throw new ModelFormatException($"Tokenizer file '{source}' names the unknown token '{unkToken}' (model.unk_token), which is not in model.vocab.", source);
            }

            _unkId = unk;
        }

        _fuseUnk = fuseUnk;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _prefix = string.IsNullOrEmpty(continuingSubwordPrefix) ? null : continuingSubwordPrefix;
        _suffix = string.IsNullOrEmpty(endOfWordSuffix) ? null : endOfWordSuffix;
        Array.Fill(_charIds, -1);
        foreach (var (token, id) in vocab)
        {
            if (token.Length == 1)
            {
                _charIds[token[0]] = id;
            }
        }

        for (var b = 0; b < 256; b++)
        {
            _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
        }

        _cacheLookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        _joinsMetaspace = MetaspaceSegmentation(vocab);
    }

    /// <summary>
    /// Merges never cross a point where no vocabulary token could span it, so a word can be cut there and each piece
    /// merged (and cached) on its own with the same result: every merge makes a vocabulary token (checked above),
    /// and a merge across "x▁" would make a token containing "x▁". With "▁" itself in the vocabulary no unknown run
    /// or byte fallback reaches across it either. Affixes change the pieces' spellings, so they turn this off.
    /// </summary>
    private bool[]? MetaspaceSegmentation(Dictionary<string, int> vocab)
    {
        if (_prefix is not null || _suffix is not null || _charIds[Metaspace] < 0)
        {
            return null;
        }

        var joins = new bool[char.MaxValue + 1];
        joins[Metaspace] = true;
        foreach (var token in vocab.Keys)
        {
            for (var j = 1; j < token.Length; j++)
            {
                if (token[j] == Metaspace) joins[token[j - 1]] = true;
            }
        }

        return joins;
    }

    private const char Metaspace = '\u2581';

    public int VocabularySize { get; }

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : null;

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    public void Tokenize(string word, List<int> ids, List<int>? ends)
    {
        if (word.Length == 0)
        {
            return;
        }

        if (_ignoreMerges && _vocab.TryGetValue(word, out var whole))
        {
            ids.Add(whole);
            ends?.Add(word.Length);
            return;
        }

        if (_joinsMetaspace is not { } joins)
        {
            TokenizeSegment(word, 0, ids, ends);
            return;
        }

        var start = 0;
        for (var i = 1; i < word.Length; i++)
        {
            if (word[i] == Metaspace && !joins[word[i - 1]])
            {
                TokenizeSegment(word.AsSpan(start, i - start), start, ids, ends);
                start = i;
            }
        }

        TokenizeSegment(word.AsSpan(start), start, ids, ends);
    }

    private void TokenizeSegment(ReadOnlySpan<char> word, int offset, List<int> ids, List<int>? ends)
    {
        (int[] Ids, int[] Ends) result = default;
        var cacheable = word.Length <= MaxCachedWordLength;
        bool hit;
        lock (_cacheLock)
        {
            hit = cacheable && _cacheLookup.TryGetValue(word, out result);
        }

        if (!hit)
        {
            result = Merge(word);
            if (cacheable)
            {
                lock (_cacheLock)
                {
                    if (_cache.Count >= CacheCapacity) _cache.Clear();
                    _cacheLookup[word] = result;
                }
            }
        }

        ids.AddRange(result.Ids!);
        if (ends is not null)
        {
            foreach (var end in result.Ends!) ends.Add(end + offset);
        }
    }

    private struct Symbol
    {
        public int Id;
        public int Start;
        public int End;
        public int Prev;
        public int Next;
        public bool Removed;
    }

    /// <summary>
    /// The merges that build <paramref name="word"/>'s tokens, in the order they happen (what <c>onnxlm tokenize
    /// --explain</c> shows): each step joins two adjacent pieces into the vocabulary entry of the lowest-ranked pair.
    /// </summary>
    internal List<(string Left, string Right, int Rank)> ExplainMerges(string word)
    {
        var trace = new List<(string, string, int)>();
        if (_joinsMetaspace is not { } joins)
        {
            Merge(word, trace);
            return trace;
        }

        var start = 0;
        for (var i = 1; i <= word.Length; i++)
        {
            if (i == word.Length || (word[i] == Metaspace && !joins[word[i - 1]]))
            {
                Merge(word.AsSpan(start, i - start), trace);
                start = i;
            }
        }

        return trace;
    }

    private (int[] Ids, int[] Ends) Merge(ReadOnlySpan<char> word, List<(string Left, string Right, int Rank)>? trace = null)
    {
        var symbols = new List<Symbol>(word.Length);
        (int Id, int Start, int End)? pendingUnk = null;
        void Add(int id, int start, int end)
        {
            symbols.Add(new Symbol { Id = id, Start = start, End = end, Prev = symbols.Count - 1, Next = symbols.Count + 1 });
        }

        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < word.Length;)
        {
            var length = i + 1 < word.Length && char.IsSurrogatePair(word[i], word[i + 1]) ? 2 : 1;
            var isFirst = i == 0;
            var isLast = i + length == word.Length;
            var id = -1;
            string? withAffixes = null;
            if ((_prefix is null || isFirst) && (_suffix is null || !isLast))
            {
                id = length == 1 ? _charIds[word[i]] : _lookup.TryGetValue(word.Slice(i, 2), out var v) ? v : -1;
            }
            else
            {
                withAffixes = string.Concat(isFirst ? "" : _prefix, word.Slice(i, length), isLast ? _suffix : "");
                id = _vocab.TryGetValue(withAffixes, out var v) ? v : -1;
            }

            if (id >= 0)
            {
                if (pendingUnk is { } unk)
                {
                    Add(unk.Id, unk.Start, unk.End);
                    pendingUnk = null;
                }

                Add(id, i, i + length);
            }
            else
            {
                var fellBack = false;
                if (_byteFallback)
                {
                    // The bytes of the piece as it would have been looked up (prefix and suffix included), as Hugging Face does.
                    var bytes = withAffixes is null ? utf8[..Encoding.UTF8.GetBytes(word.Slice(i, length), utf8)] : Encoding.UTF8.GetBytes(withAffixes);
                    var all = true;
                    foreach (var b in bytes) all &= _byteIds[b] >= 0;
                    if (all)
                    {
                        // A pending unknown is not flushed first: Hugging Face adds it after the byte pieces.
                        // All but the last byte piece are zero-width; the pipeline gives them the character's span.
                        for (var k = 0; k < bytes.Length; k++) Add(_byteIds[bytes[k]], i, k == bytes.Length - 1 ? i + length : i);
                        fellBack = true;
                    }
                }

                if (!fellBack && _unkId is { } unkId)
                {
                    if (pendingUnk is { } unk && _fuseUnk)
                    {
                        pendingUnk = (unk.Id, unk.Start, i + length);
                    }
                    else
                    {
                        if (pendingUnk is { } previous) Add(previous.Id, previous.Start, previous.End);
                        pendingUnk = (unkId, i, i + length);
                    }
                }
            }

            i += length;
        }

        if (pendingUnk is { } last)
        {
            Add(last.Id, last.Start, last.End);
        }

        var s = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(symbols);
        if (s.Length > 0)
        {
            s[^1].Next = -1;
        }

        if (s.Length > 1 && _merges.Count > 0)
        {
            // Entries and priorities packed into longs: (pos, merged) and (rank, pos), compared as plain integers.
            var queue = new PriorityQueue<long, long>(s.Length);
            for (var i = 0; i + 1 < s.Length; i++)
            {
                if (_merges.TryGetValue(Key(s[i].Id, s[i + 1].Id), out var m))
                {
                    queue.Enqueue(Key(i, m.Merged), Key(m.Rank, i));
                }
            }

            while (queue.TryDequeue(out var packed, out _))
            {
                var top = (Pos: (int)(packed >> 32), Merged: (int)(uint)packed);
                ref var current = ref s[top.Pos];
                if (current.Removed || current.Next < 0)
                {
                    continue;
                }

                var nextPos = current.Next;
                ref var right = ref s[nextPos];
                // An entry is stale when its pair has changed since it was queued.
                if (!_merges.TryGetValue(Key(current.Id, right.Id), out var pair) || pair.Merged != top.Merged)
                {
                    continue;
                }

                trace?.Add((_idToToken[current.Id] ?? "?", _idToToken[right.Id] ?? "?", pair.Rank));
                current.Id = top.Merged;
                current.End = right.End;
                current.Next = right.Next;
                right.Removed = true;
                if (current.Next >= 0)
                {
                    s[current.Next].Prev = top.Pos;
                }

                if (current.Prev >= 0 && _merges.TryGetValue(Key(s[current.Prev].Id, current.Id), out var before))
                {
                    queue.Enqueue(Key(current.Prev, before.Merged), Key(before.Rank, current.Prev));
                }

                if (current.Next >= 0 && _merges.TryGetValue(Key(current.Id, s[current.Next].Id), out var after))
                {
                    queue.Enqueue(Key(top.Pos, after.Merged), Key(after.Rank, top.Pos));
                }
            }
        }

        var count = 0;
        foreach (ref var symbol in s)
        {
            if (!symbol.Removed) count++;
        }

        var ids = new int[count];
        var ends = new int[count];
        var n = 0;
        for (var i = 0; i < s.Length; i++)
        {
            if (!s[i].Removed)
            {
                ids[n] = s[i].Id;
                ends[n++] = s[i].End;
            }
        }

        return (ids, ends);
    }
}
