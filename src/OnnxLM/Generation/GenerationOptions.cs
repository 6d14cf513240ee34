namespace OnnxLM;

/// <summary>
/// How <see cref="LanguageModel.GenerateAsync(string, GenerationOptions?, CancellationToken)"/> chooses tokens and when it stops.
/// With the defaults it decodes greedily (temperature 0) for up to 128 new tokens and stops at the model's EOS tokens.
/// Setters validate and throw <see cref="ArgumentOutOfRangeException"/> naming the option.
/// </summary>
public sealed class GenerationOptions
{
    private int _maxNewTokens = 128;
    private float _temperature;
    private int _topK;
    private float _topP = 1f;

    /// <summary>The most tokens to generate (at least 1). Default 128. The session's maximum length is the prompt plus this (capped at the context length).</summary>
    public int MaxNewTokens
    {
        get => _maxNewTokens;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(MaxNewTokens));
            _maxNewTokens = value;
        }
    }

    /// <summary>
    /// Softmax temperature. 0 (the default) means greedy decoding (argmax, ties to the lowest id); above 0 samples
    /// from softmax(logits / temperature) after <see cref="TopK"/> and <see cref="TopP"/> (Hugging Face order).
    /// </summary>
    public float Temperature
    {
        get => _temperature;
        set
        {
            if (!(value >= 0) || !float.IsFinite(value))
            {
                throw new ArgumentOutOfRangeException(nameof(Temperature), value, "Temperature must be a finite number ≥ 0 (0 = greedy).");
            }

            _temperature = value;
        }
    }

    /// <summary>When sampling, keep only the K most likely tokens. 0 (the default) disables it.</summary>
    public int TopK
    {
        get => _topK;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value, nameof(TopK));
            _topK = value;
        }
    }

    /// <summary>When sampling, keep the smallest set of most likely tokens whose probability reaches P, in (0, 1]. 1 (the default) disables it.</summary>
    public float TopP
    {
        get => _topP;
        set
        {
            if (!(value > 0 && value <= 1))
            {
                throw new ArgumentOutOfRangeException(nameof(TopP), value, "TopP must be in (0, 1].");
            }

            _topP = value;
        }
    }

    /// <summary>Seed of the random source used for sampling; the same seed, model and options give the same tokens. Null draws a random seed.</summary>
    public int? Seed { get; set; }

    /// <summary>Token ids that end generation. Null (the default) uses the model's EOS ids; an empty list never stops early.</summary>
    public IReadOnlyList<int>? StopTokenIds { get; set; }

    /// <summary>Whether to put the BOS token before the prompt. Null (the default) follows the tokenizer's configuration.</summary>
    public bool? AddBosToken { get; set; }

    /// <summary>Your own logit processors, run after the built-in ones (temperature, top-k, top-p), in list order.</summary>
    public IList<ILogitProcessor> LogitProcessors { get; } = [];

    /// <summary>Replaces the final choice of token (default: greedy when <see cref="Temperature"/> is 0, otherwise categorical sampling).</summary>
    public ITokenPicker? TokenPicker { get; set; }
}
