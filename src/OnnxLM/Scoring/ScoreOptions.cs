namespace OnnxLM;

/// <summary>How <see cref="LanguageModel.ScoreAsync(string, string, ScoreOptions?, CancellationToken)"/> tokenizes and what it reports.</summary>
public sealed class ScoreOptions
{
    /// <summary>
    /// Whether to put BOS before every context. Null (the default) follows the tokenizer, as lm-evaluation-harness does
    /// since its change of October 2025: the context is encoded with the tokenizer's special tokens (BOS for Llama,
    /// nothing for GPT-2), never doubling a BOS the text already starts with. True: BOS and no other special tokens;
    /// false: no special tokens (lm-eval's earlier default). An empty context always gets <see cref="PrefixTokenId"/>.
    /// </summary>
    public bool? AddBosToken { get; set; }

    /// <summary>The token scored contexts start with when the context is empty. Null uses the model's BOS, else its first EOS.</summary>
    public int? PrefixTokenId { get; set; }

    /// <summary>How many most-likely alternatives to report for every scored token (0 to 100). Default 0.</summary>
    public int TopAlternatives { get; set => field = OptionCheck.InRange(value, 0, 100, nameof(TopAlternatives)); }
}
