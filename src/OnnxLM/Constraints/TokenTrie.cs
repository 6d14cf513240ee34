using System.Runtime.CompilerServices;

namespace OnnxLM.Constraints;

/// <summary>
/// The byte strings of a vocabulary's ordinary tokens as a trie laid out in preorder, so a constraint can visit only
/// the tokens its state can continue with: a byte no valid output takes prunes every token below it. Built once per
/// tokenizer and vocabulary size and shared (immutable).
/// </summary>
internal sealed class TokenTrie
{
    private static readonly ConditionalWeakTable<TextTokenizer, Dictionary<int, TokenTrie>> Cache = [];

    /// <summary>Node i's byte (the last byte of its prefix).</summary>
    public readonly byte[] Byte;

    /// <summary>Node i's prefix length (1 for the root's children).</summary>
    public readonly int[] Depth;

    /// <summary>The index after node i's subtree: where a walk goes when node i's byte is refused.</summary>
    public readonly int[] SubtreeEnd;

    /// <summary>Node i's tokens are <see cref="TokenIds"/>[TokenStart[i] .. TokenStart[i + 1]).</summary>
    public readonly int[] TokenStart;

    public readonly int[] TokenIds;

    private TokenTrie(byte[]?[] tokens, int vocabularySize)
    {
        VocabularySize = vocabularySize;
        TokenBytes = tokens;
        var order = Enumerable.Range(0, tokens.Length).Where(id => tokens[id] is { Length: > 0 }).ToArray();
        Array.Sort(order, (a, b) => tokens[a].AsSpan().SequenceCompareTo(tokens[b]) is var c && c != 0 ? c : a.CompareTo(b));
        var bytes = new List<byte>();
        var depths = new List<int>();
        var ends = new List<int>();
        var tokenStart = new List<int>();
        var ids = new List<int>(order.Length);
        var open = new Stack<int>(); // nodes on the current path, deepest on top
        byte[] previous = [];
        foreach (var id in order)
        {
            var key = tokens[id]!;
            var common = key.AsSpan().CommonPrefixLength(previous);
            while (open.Count > common) ends[open.Pop()] = bytes.Count;
            for (var k = common; k < key.Length; k++)
            {
                open.Push(bytes.Count);
                bytes.Add(key[k]);
                depths.Add(k + 1);
                ends.Add(-1);
                tokenStart.Add(ids.Count);
            }

            ids.Add(id); // sorted keys: the tokens of a node come right after it is opened
            previous = key;
        }

        while (open.Count > 0) ends[open.Pop()] = bytes.Count;
        tokenStart.Add(ids.Count);
        Byte = [.. bytes];
        Depth = [.. depths];
        SubtreeEnd = [.. ends];
        TokenStart = [.. tokenStart];
        TokenIds = [.. ids];
        MaxDepth = depths.Count == 0 ? 0 : depths.Max();
    }

    /// <summary>The number of logits the trie's masks cover.</summary>
    public int VocabularySize { get; }

    /// <summary>The bytes each token adds, by id (null: never allowed by a constraint).</summary>
    public byte[]?[] TokenBytes { get; }

    public int NodeCount => Byte.Length;

    public int MaxDepth { get; }

    /// <summary>One byte step of a constraint's automaton; a struct, so <see cref="AddAllowed{TState, TStepper}"/> is compiled per state type without boxing.</summary>
    internal interface IStepper<TState>
    {
        bool TryStep(TState state, byte b, out TState next);
    }

    /// <summary>
    /// Sets the bit of every token whose bytes <paramref name="stepper"/> can walk from <paramref name="start"/>: a
    /// preorder walk that keeps the state of each prefix and skips a node's whole subtree when its byte is refused.
    /// </summary>
    public void AddAllowed<TState, TStepper>(TStepper stepper, TState start, ulong[] allowed) where TStepper : struct, IStepper<TState>
    {
        var states = new TState[MaxDepth + 1];
        states[0] = start;
        for (var i = 0; i < Byte.Length;)
        {
            var d = Depth[i];
            if (!stepper.TryStep(states[d - 1], Byte[i], out var next))
            {
                i = SubtreeEnd[i]; // no token below this byte can be valid
                continue;
            }

            states[d] = next;
            for (var t = TokenStart[i]; t < TokenStart[i + 1]; t++) allowed[TokenIds[t] >> 6] |= 1UL << TokenIds[t];
            i++;
        }
    }

    /// <summary>The trie of <paramref name="tokenizer"/>'s ordinary tokens below <paramref name="vocabularySize"/>, built on first use.</summary>
    public static TokenTrie For(TextTokenizer tokenizer, int vocabularySize)
    {
        var byVocabulary = Cache.GetValue(tokenizer, _ => []);
        lock (byVocabulary)
        {
            if (byVocabulary.TryGetValue(vocabularySize, out var trie)) return trie;
            var tokens = new byte[]?[vocabularySize];
            for (var id = 0; id < vocabularySize && id < tokenizer.VocabularySize; id++) tokens[id] = tokenizer.TokenBytes(id);
            return byVocabulary[vocabularySize] = new TokenTrie(tokens, vocabularySize);
        }
    }
}
