using System.Collections.Concurrent;

namespace OnnxLM.Constraints;

/// <summary>
/// The allowed-token bit sets of one constraint on one vocabulary, by state key. Bounded by memory: once it holds
/// about 64 MB of sets it starts over, so a constraint with endlessly many states cannot grow without limit.
/// </summary>
internal sealed class AllowedTokenCache(int vocabularySize)
{
    private const long MaxBytes = 64L << 20;
    private readonly ConcurrentDictionary<object, ulong[]> _sets = new();
    private readonly int _maxEntries = (int)Math.Max(16, MaxBytes / (((vocabularySize + 63) / 64) * 8L));

    public bool TryGet(object key, out ulong[] allowed) => _sets.TryGetValue(key, out allowed!);

    public void Add(object key, ulong[] allowed)
    {
        if (_sets.Count >= _maxEntries) _sets.Clear();
        _sets[key] = allowed;
    }
}
