namespace OnnxLM;

/// <summary>Why generation ended.</summary>
public enum FinishReason
{
    /// <summary>A stop token (EOS) was generated or the text reached a stop sequence.</summary>
    Stop,

    /// <summary><see cref="GenerationOptions.MaxNewTokens"/> tokens were generated, or the context length was reached.</summary>
    Length,

    /// <summary><see cref="GenerationOptions.MaxTime"/> elapsed.</summary>
    TimeLimit,
}
