namespace OnnxLM;

/// <summary>Values from the model's configuration that override what the tokenizer files say.</summary>
public sealed class TokenizerOptions
{
    /// <summary>The beginning-of-sequence id; null keeps the tokenizer files' BOS.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>End-of-sequence ids; null keeps the tokenizer files' EOS.</summary>
    public IReadOnlyList<int>? EosTokenIds { get; init; }

    /// <summary>The padding id; null keeps the tokenizer files' pad token.</summary>
    public int? PadTokenId { get; init; }

    /// <summary>Whether <see cref="TextTokenizer.Encode(string, bool?)"/> adds BOS by default; null follows tokenizer_config.json, else the tokenizer family.</summary>
    public bool? AddBosToken { get; init; }
}
