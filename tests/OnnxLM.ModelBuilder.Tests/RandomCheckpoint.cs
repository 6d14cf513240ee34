using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>Random weights under Hugging Face names for a config, usable as a weight source and as a safetensors file.</summary>
public sealed class RandomCheckpoint : IWeightSource
{
    public Dictionary<string, (long[] Shape, float[] Values)> Tensors { get; } = new(StringComparer.Ordinal);

    public static RandomCheckpoint For(DecoderConfig c, int seed)
    {
        var random = new Random(seed);
        var checkpoint = new RandomCheckpoint();
        void Add(string name, long[] shape, float scale = 0.2f, float offset = 0f)
        {
            var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (var i = 0; i < values.Length; i++) values[i] = offset + scale * (float)(random.NextDouble() * 2 - 1);
            checkpoint.Tensors[name] = (shape, values);
        }

        var (h, d, nh, kv) = (c.HiddenSize, c.HeadSize, c.AttentionHeadCount, c.KeyValueHeadCount);
        if (c.ModelType == "llama")
        {
            Add("model.embed_tokens.weight", [c.VocabularySize, h], 1f);
            for (var i = 0; i < c.LayerCount; i++)
            {
                var p = $"model.layers.{i}.";
                Add(p + "self_attn.q_proj.weight", [nh * d, h]);
                Add(p + "self_attn.k_proj.weight", [kv * d, h]);
                Add(p + "self_attn.v_proj.weight", [kv * d, h]);
                Add(p + "self_attn.o_proj.weight", [h, nh * d]);
                if (c.AttentionBias)
                {
                    Add(p + "self_attn.q_proj.bias", [nh * d]);
                    Add(p + "self_attn.k_proj.bias", [kv * d]);
                    Add(p + "self_attn.v_proj.bias", [kv * d]);
                }

                Add(p + "mlp.gate_proj.weight", [c.IntermediateSize, h]);
                Add(p + "mlp.up_proj.weight", [c.IntermediateSize, h]);
                Add(p + "mlp.down_proj.weight", [h, c.IntermediateSize]);
                Add(p + "input_layernorm.weight", [h], 0.3f, 1f);
                Add(p + "post_attention_layernorm.weight", [h], 0.3f, 1f);
            }

            Add("model.norm.weight", [h], 0.3f, 1f);
            if (!c.TieWordEmbeddings) Add("lm_head.weight", [c.VocabularySize, h]);
        }
        else
        {
            Add("wte.weight", [c.VocabularySize, h], 1f);
            Add("wpe.weight", [c.MaxPositions, h], 0.5f);
            for (var i = 0; i < c.LayerCount; i++)
            {
                var p = $"h.{i}.";
                Add(p + "ln_1.weight", [h], 0.3f, 1f);
                Add(p + "ln_1.bias", [h], 0.1f);
                Add(p + "attn.c_attn.weight", [h, 3 * h]);
                Add(p + "attn.c_attn.bias", [3 * h], 0.1f);
                Add(p + "attn.c_proj.weight", [h, h]);
                Add(p + "attn.c_proj.bias", [h], 0.1f);
                Add(p + "ln_2.weight", [h], 0.3f, 1f);
                Add(p + "ln_2.bias", [h], 0.1f);
                Add(p + "mlp.c_fc.weight", [h, c.IntermediateSize]);
                Add(p + "mlp.c_fc.bias", [c.IntermediateSize], 0.1f);
                Add(p + "mlp.c_proj.weight", [c.IntermediateSize, h]);
                Add(p + "mlp.c_proj.bias", [h], 0.1f);
            }

            Add("ln_f.weight", [h], 0.3f, 1f);
            Add("ln_f.bias", [h], 0.1f);
        }

        return checkpoint;
    }

    public bool Contains(string name) => Tensors.ContainsKey(name);

    public float[] Read(string name, params long[] shape)
    {
        var (actual, values) = Tensors.TryGetValue(name, out var t) ? t : throw new ModelFormatException($"no tensor '{name}'");
        Assert.Equal(shape, actual);
        return values;
    }

    public float[] this[string name] => Tensors[name].Values;

    /// <summary>Writes tensors as a safetensors file (F32).</summary>
    public static void WriteSafeTensors(string path, Dictionary<string, (long[] Shape, float[] Values)> tensors)
    {
        var header = new Dictionary<string, object> { ["__metadata__"] = new Dictionary<string, string> { ["format"] = "pt" } };
        long offset = 0;
        foreach (var (name, (shape, values)) in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            header[name] = new { dtype = "F32", shape, data_offsets = new[] { offset, offset + values.Length * 4L } };
            offset += values.Length * 4L;
        }

        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var file = new BinaryWriter(File.Create(path));
        file.Write((ulong)json.Length);
        file.Write(json);
        foreach (var (_, (_, values)) in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            file.Write(MemoryMarshal.AsBytes(values.AsSpan()));
        }
    }
}
