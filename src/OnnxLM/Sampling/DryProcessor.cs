namespace OnnxLM.Sampling;

/// <summary>
/// DRY, "Don't Repeat Yourself" (p-e-w's sampler, as in llama.cpp and koboldcpp): a token that would extend a
/// sequence already seen earlier is penalised by multiplier · base^(length − allowedLength) when the repeated
/// sequence it continues is at least <c>allowedLength</c> tokens long. Sequence-breaker tokens (newlines,
/// quotes, ...) end a match, so structure can repeat while content does not.
/// </summary>
internal sealed class DryProcessor : ILogitProcessor
{
    private const int MaxMatch = 64;
    private readonly HashSet<int> _breakers;
    private readonly Dictionary<int, int> _longest = [];

    /// <summary>Creates the processor.</summary>
    /// <param name="multiplier">Penalty scale (&gt; 0).</param>
    /// <param name="base">Growth per extra repeated token (&gt; 1).</param>
    /// <param name="allowedLength">Repeats shorter than this are free (≥ 1).</param>
    /// <param name="window">How many latest tokens are searched (≥ 2).</param>
    /// <param name="breakerTokenIds">Tokens that end a match.</param>
    public DryProcessor(float multiplier, float @base, int allowedLength, int window, IEnumerable<int> breakerTokenIds)
    {
        if (!(multiplier > 0) || !float.IsFinite(multiplier)) throw new ArgumentOutOfRangeException(nameof(multiplier), multiplier, "DryMultiplier must be > 0.");
        if (!(@base > 1) || !float.IsFinite(@base)) throw new ArgumentOutOfRangeException(nameof(@base), @base, "DryBase must be > 1.");
        ArgumentOutOfRangeException.ThrowIfLessThan(allowedLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 2);
        (Multiplier, Base, AllowedLength, Window) = (multiplier, @base, allowedLength, window);
        _breakers = [.. breakerTokenIds];
    }

    /// <summary>Penalty scale.</summary>
    public float Multiplier { get; }

    /// <summary>Exponential base.</summary>
    public float Base { get; }

    /// <summary>Longest free repeat.</summary>
    public int AllowedLength { get; }

    /// <summary>Tokens searched.</summary>
    public int Window { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context)
    {
        var all = context.Tokens;
        var h = all[Math.Max(0, all.Length - Window)..];
        var n = h.Length;
        if (n < 2 || _breakers.Contains(h[n - 1])) return;
        _longest.Clear();

        // For each earlier position i, the repeat length is the common suffix of h[..i] and h[..n-1]; h[i+1] would continue it.
        for (var i = n - 2; i >= 0; i--)
        {
            var length = 0;
            while (length < MaxMatch && i - length >= 0 && h[i - length] == h[n - 1 - length] && !_breakers.Contains(h[i - length]))
            {
                length++;
            }

            if (length == 0) continue;
            var candidate = h[i + 1];
            if (_breakers.Contains(candidate)) continue;
            if (!_longest.TryGetValue(candidate, out var best) || length > best) _longest[candidate] = length;
        }

        foreach (var (token, length) in _longest)
        {
            if (length >= AllowedLength && (uint)token < (uint)logits.Length)
            {
                logits[token] -= Multiplier * MathF.Pow(Base, length - AllowedLength);
            }
        }
    }
}
