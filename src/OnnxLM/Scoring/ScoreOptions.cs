namespace OnnxLM;

/// <summary>How <see cref="LanguageModel.ScoreAsync(string, string, ScoreOptions?, CancellationToken)"/> tokenizes a context/continuation pair.</summary>
public sealed class ScoreOptions
{
    /// <summary>
    /// Whether to put BOS before every context. Default false, as lm-evaluation-harness's Hugging Face backend does
    /// (it adds no special tokens); an empty context always gets <see cref="PrefixTokenId"/>.
    /// </summary>
    public bool AddBosToken { get; set; }

    /// <summary>The token scored contexts start with when the context is empty. Null uses the model's BOS, else its first EOS.</summary>
    public int? PrefixTokenId { get; set; }
}
