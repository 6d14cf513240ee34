using System.Numerics;
using OnnxLM.Sampling;

namespace OnnxLM.Constraints;

/// <summary>
/// Applies an <see cref="OutputConstraint"/> during generation: before each pick, every token whose bytes cannot
/// continue a valid output is masked, the end tokens are allowed exactly when the output is complete, and once it is
/// final only an end token remains. The allowed tokens of a state are found by walking the vocabulary's byte trie
/// (a refused byte prunes every token below it) and cached per state on the constraint; the state advances by the
/// bytes of each chosen token.
/// </summary>
internal sealed class ConstraintProcessor : ILogitProcessor
{
    private readonly OutputConstraint _constraint;
    private readonly TokenTrie _trie;
    private readonly AllowedTokenCache _cache;
    private readonly int[] _stopIds;
    private readonly float[] _stopLogits;
    private object _state;
    private int _consumed;

    public ConstraintProcessor(OutputConstraint constraint, TextTokenizer tokenizer, IReadOnlyList<int> stopIds, int vocabularySize)
    {
        if (stopIds.Count == 0) throw new InvalidOptionException(nameof(GenerationOptions.StopTokenIds), "A constraint needs an end token to stop at; the model has none and GenerationOptions.StopTokenIds is empty.");
        _constraint = constraint;
        _trie = TokenTrie.For(tokenizer, vocabularySize);
        _cache = constraint.AllowedCache(_trie);
        _stopIds = [.. stopIds];
        _stopLogits = new float[_stopIds.Length];
        _state = constraint.Start;
    }

    public void Process(Span<float> logits, SamplingContext context)
    {
        Advance(context);
        var allowed = Allowed();
        for (var k = 0; k < _stopIds.Length; k++) _stopLogits[k] = (uint)_stopIds[k] < (uint)logits.Length ? logits[_stopIds[k]] : 0;
        var words = Math.Min(allowed.Length, (logits.Length + 63) / 64);
        for (var w = 0; w < words; w++)
        {
            var refused = ~allowed[w];
            if (refused == 0) continue;
            var base64 = w << 6;
            while (refused != 0)
            {
                var i = base64 + BitOperations.TrailingZeroCount(refused);
                if (i >= logits.Length) break;
                logits[i] = float.NegativeInfinity;
                refused &= refused - 1;
            }
        }

        for (var i = words * 64; i < logits.Length; i++) logits[i] = float.NegativeInfinity; // logits beyond the tokenizer
        // End tokens: exactly when the output is complete, whatever their text.
        var complete = _constraint.IsComplete(_state);
        for (var k = 0; k < _stopIds.Length; k++)
        {
            if ((uint)_stopIds[k] < (uint)logits.Length) logits[_stopIds[k]] = complete ? _stopLogits[k] : float.NegativeInfinity;
        }
    }

    /// <summary>Moves the state over the tokens chosen since the last step.</summary>
    private void Advance(SamplingContext context)
    {
        var tokens = context.Tokens;
        for (var i = context.PromptLength + _consumed; i < tokens.Length; i++, _consumed++)
        {
            var bytes = (uint)tokens[i] < (uint)_trie.TokenBytes.Length ? _trie.TokenBytes[tokens[i]] : null;
            if (bytes is null) continue; // an end token (generation stops) or one the mask allowed for another reason
            foreach (var b in bytes)
            {
                _state = _constraint.Step(_state, b) ?? throw new InvalidOperationException("The constrained output reached a state no valid output continues from.");
            }
        }
    }

    private ulong[] Allowed()
    {
        var key = _constraint.CacheKey(_state);
        if (key is not null && _cache.TryGet(key, out var cached)) return cached;
        var allowed = new ulong[(_trie.VocabularySize + 63) / 64];
        if (!_constraint.IsFinal(_state)) _constraint.AddAllowed(_state, _trie, allowed);
        if (!_constraint.IsComplete(_state) && Array.TrueForAll(allowed, w => w == 0))
        {
            // Only a vocabulary without byte tokens can get here: it cannot spell any character the output needs next.
            throw new InvalidOperationException("The output constraint allows no token of this vocabulary at this point: the tokenizer cannot write any of the characters a valid output needs next.");
        }

        if (key is not null) _cache.Add(key, allowed);
        return allowed;
    }
}
