namespace OnnxLM;

/// <summary>Why generation ended.</summary>
public enum FinishReason
{
    /// <summary>A stop token (EOS) was generated.</summary>
    Stop,

    /// <summary><see cref="GenerationOptions.MaxNewTokens"/> tokens were generated, or the context length was reached.</summary>
    Length,
}
