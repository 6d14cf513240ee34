namespace OnnxLM.ModelBuilder;

/// <summary>How <see cref="DecoderModelBuilder"/> writes each layer's attention (<see cref="ModelBuilderOptions.Attention"/>).</summary>
public enum AttentionOperator
{
    /// <summary>
    /// Standard ONNX operators: the present is Concat(past, new keys), key/value heads repeated for grouped-query
    /// attention, MatMul, additive mask, Softmax. Runs on every execution provider; the cache is copied into a fresh
    /// present each step (the graph's own Concat).
    /// </summary>
    Standard,

    /// <summary>
    /// One ONNX Runtime <c>com.microsoft.GroupQueryAttention</c> node per layer reading <c>past_key_values.%d.*</c> and
    /// writing <c>present.%d.*</c> directly, so a runtime can bind one buffer as both and the operator appends the new
    /// keys in place (OnnxLM does on the CPU; ONNX Runtime GenAI with <c>past_present_share_buffer</c>). Needs a head
    /// size that is a multiple of 8; attention probabilities cannot be output. Sequences in a batch must be padded on
    /// the right (the operator derives each row's length from the attention mask).
    /// </summary>
    GroupQuery,
}
