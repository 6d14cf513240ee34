namespace OnnxLM;

/// <summary>How a graph takes and returns its past key/value cache.</summary>
internal enum KvCacheLayout
{
    /// <summary>One key and one value tensor per layer, each <c>[batch, kv_heads, seq, head_dim]</c> (<c>past_key_values.%d.key</c> / <c>.value</c>).</summary>
    SeparateKeyValue,

    /// <summary>One tensor per layer holding key and value stacked, <c>[2, batch, kv_heads, seq, head_dim]</c> (<c>past_%d</c>, older GPT-2 exports).</summary>
    Combined,
}
