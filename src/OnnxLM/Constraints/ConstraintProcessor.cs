namespace OnnxLM.Constraints;

/// <summary>
/// Applies an <see cref="OutputConstraint"/> during generation: before each pick, every token whose text cannot
/// continue a valid output is masked, the end tokens are allowed exactly when the output is complete, and once it is
/// final only an end token remains. The state advances by the text of each chosen token; allowed sets are cached
/// per state where the constraint's states repeat.
/// </summary>
internal sealed class ConstraintProcessor : ILogitProcessor
{
    private readonly OutputConstraint _constraint;
    private readonly string?[] _texts;
    private readonly int[] _stopIds;
    private readonly Dictionary<int, bool[]> _cache = [];
    private object _state;
    private int _consumed;

    public ConstraintProcessor(OutputConstraint constraint, TextTokenizer tokenizer, IReadOnlyList<int> stopIds, int vocabularySize)
    {
        if (stopIds.Count == 0) throw new ArgumentException("A constraint needs an end token to stop at; the model has none and GenerationOptions.StopTokenIds is empty.");
        _constraint = constraint;
        _stopIds = [.. stopIds];
        _state = constraint.Start;
        // The text each token adds; special tokens and tokens that are only part of a character can never be checked, so never allowed.
        _texts = new string?[vocabularySize];
        for (var id = 0; id < vocabularySize && id < tokenizer.VocabularySize; id++)
        {
            if (tokenizer.IsSpecialToken(id)) continue;
            var text = tokenizer.TokenText(id);
            if (text.Length > 0 && !text.Contains('\uFFFD')) _texts[id] = text;
        }
    }

    public void Process(Span<float> logits, SamplingContext context)
    {
        Advance(context);
        var allowed = Allowed();
        for (var i = 0; i < logits.Length; i++)
        {
            if (i >= allowed.Length || !allowed[i]) logits[i] = float.NegativeInfinity;
        }
    }

    /// <summary>Moves the state over the tokens chosen since the last step.</summary>
    private void Advance(SamplingContext context)
    {
        var tokens = context.Tokens;
        for (var i = context.PromptLength + _consumed; i < tokens.Length; i++, _consumed++)
        {
            var text = (uint)tokens[i] < (uint)_texts.Length ? _texts[tokens[i]] : null;
            if (text is null) continue; // an end token (generation stops) or one the mask allowed for another reason
            _state = Walk(_state, text) ?? throw new InvalidOperationException("The constrained output reached a state no valid output continues from.");
        }
    }

    private object? Walk(object state, string text)
    {
        foreach (var c in text)
        {
            var next = _constraint.Step(state, c);
            if (next is null) return null;
            state = next;
        }

        return state;
    }

    private bool[] Allowed()
    {
        var key = _constraint.CacheKey(_state);
        if (key is { } k && _cache.TryGetValue(k, out var cached)) return cached;
        var allowed = new bool[_texts.Length];
        var complete = _constraint.IsComplete(_state);
        if (!_constraint.IsFinal(_state))
        {
            for (var id = 0; id < _texts.Length; id++)
            {
                if (_texts[id] is { } text && Walk(_state, text) is not null) allowed[id] = true;
            }
        }

        if (complete)
        {
            foreach (var stop in _stopIds)
            {
                if ((uint)stop < (uint)allowed.Length) allowed[stop] = true;
            }
        }

        if (key is { } cacheKey) _cache[cacheKey] = allowed;
        return allowed;
    }
}
