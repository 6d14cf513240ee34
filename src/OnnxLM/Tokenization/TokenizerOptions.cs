namespace OnnxLM;

/// <summary>Ids from the model's configuration (genai_config.json, config.json), used where the tokenizer files name none.</summary>
public sealed class TokenizerOptions
{
    /// <summary>The beginning-of-sequence id to use when the tokenizer files name no BOS.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>End-of-sequence ids to use when the tokenizer files name no EOS.</summary>
    public IReadOnlyList<int>? EosTokenIds { get; init; }

    /// <summary>The padding id to use when the tokenizer files name no pad token.</summary>
    public int? PadTokenId { get; init; }
}
