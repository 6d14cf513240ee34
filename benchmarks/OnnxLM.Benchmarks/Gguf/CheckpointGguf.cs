using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OnnxLM.Benchmarks.Gguf;

/// <summary>
/// Writes a Hugging Face Llama or Qwen2 safetensors checkpoint (F32/F16/BF16, one file or shards) as GGUF the way
/// llama.cpp's <c>convert_hf_to_gguf.py</c> does: architecture <c>llama</c> (q/k rows permuted from Hugging Face's
/// half-split rotary layout to ggml's interleaved pairs, llama3 rope scaling as a <c>rope_freqs</c> factor tensor) or
/// <c>qwen2</c> (no permutation, q/k/v biases), tied embeddings without an <c>output.weight</c>, 2-D weights at the chosen
/// precision and norms/biases/rope factors in F32. The vocabulary is written as <c>tokenizer.ggml.model = "none"</c>
/// with <c>{arch}.vocab_size</c> entries, llama.cpp's form for a model driven by token ids alone (the random checkpoints have
/// no tokenizer files).
/// </summary>
internal static class CheckpointGguf
{
    /// <summary>Writes <paramref name="checkpoint"/> as a GGUF file at <paramref name="path"/> and returns its size.</summary>
    /// <exception cref="InvalidDataException">The config or a tensor is missing or not what the config implies.</exception>
    public static long Write(string checkpoint, string path, GgmlType type)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "config.json")))!.AsObject();
        var modelType = (string?)config["model_type"] ?? throw new InvalidDataException($"{checkpoint}/config.json has no model_type.");
        var arch = modelType switch
        {
            "llama" or "mistral" => "llama",
            "qwen2" => "qwen2",
            _ => throw new InvalidDataException($"model_type '{modelType}' is not written as GGUF here (llama, mistral, qwen2)."),
        };
        int Int(string key) => (int?)config[key] ?? throw new InvalidDataException($"{checkpoint}/config.json has no {key}.");
        var hidden = Int("hidden_size");
        var heads = Int("num_attention_heads");
        var kvHeads = (int?)config["num_key_value_heads"] ?? heads;
        var headDim = (int?)config["head_dim"] ?? hidden / heads;
        var layers = Int("num_hidden_layers");
        var vocab = Int("vocab_size");
        var intermediate = Int("intermediate_size");
        var ropeTheta = (double?)config["rope_theta"] ?? 10000.0;
        var eps = (double?)config["rms_norm_eps"] ?? 1e-6;
        var scaling = config["rope_scaling"] as JsonObject;
        var scalingType = (string?)scaling?["rope_type"] ?? (string?)scaling?["type"];

        var tensors = SafeTensors.Open(checkpoint);
        var gguf = new GgufWriter();
        gguf.Add("general.architecture", arch);
        gguf.Add("general.name", Path.GetFileName(Path.GetFullPath(checkpoint)));
        gguf.Add("general.file_type", type == GgmlType.F32 ? 0u : 1u); // LLAMA_FTYPE_ALL_F32 / MOSTLY_F16
        gguf.Add($"{arch}.context_length", (uint)Int("max_position_embeddings"));
        gguf.Add($"{arch}.embedding_length", (uint)hidden);
        gguf.Add($"{arch}.feed_forward_length", (uint)intermediate);
        gguf.Add($"{arch}.block_count", (uint)layers);
        gguf.Add($"{arch}.attention.head_count", (uint)heads);
        gguf.Add($"{arch}.attention.head_count_kv", (uint)kvHeads);
        gguf.Add($"{arch}.rope.freq_base", (float)ropeTheta);
        gguf.Add($"{arch}.attention.layer_norm_rms_epsilon", (float)eps);
        gguf.Add($"{arch}.rope.dimension_count", (uint)headDim);
        if (headDim != hidden / heads)
        {
            gguf.Add($"{arch}.attention.key_length", (uint)headDim);
            gguf.Add($"{arch}.attention.value_length", (uint)headDim);
        }

        gguf.Add($"{arch}.vocab_size", (uint)vocab);
        gguf.Add("tokenizer.ggml.model", "none");

        void Weight(string source, string target, long[] shape, Func<float[], float[]>? transform = null, bool keepF32 = false) =>
            gguf.AddTensor(target, shape, keepF32 ? GgmlType.F32 : type, stream =>
            {
                var values = tensors.Read(source, shape);
                if (transform is not null) values = transform(values);
                WriteValues(stream, values, keepF32 ? GgmlType.F32 : type);
            });

        if (scalingType == "llama3")
        {
            var factors = Llama3RopeFactors(headDim, ropeTheta, (double?)scaling!["factor"] ?? 8.0, (double?)scaling["low_freq_factor"] ?? 1.0,
                (double?)scaling["high_freq_factor"] ?? 4.0, (double?)scaling["original_max_position_embeddings"] ?? 8192);
            gguf.AddTensor("rope_freqs.weight", [factors.Length], GgmlType.F32, stream => WriteValues(stream, factors, GgmlType.F32));
        }
        else if (scalingType is not (null or "default"))
        {
            throw new InvalidDataException($"rope_scaling type '{scalingType}' is not written as GGUF here (llama3 or none).");
        }

        Weight("model.embed_tokens.weight", "token_embd.weight", [vocab, hidden]);
        for (var l = 0; l < layers; l++)
        {
            var p = $"model.layers.{l}.";
            var b = $"blk.{l}.";
            Weight(p + "input_layernorm.weight", b + "attn_norm.weight", [hidden], keepF32: true);
            Func<float[], float[]>? q = arch == "llama" ? v => PermuteRotaryRows(v, heads, hidden) : null;
            Func<float[], float[]>? k = arch == "llama" ? v => PermuteRotaryRows(v, kvHeads, hidden) : null;
            Weight(p + "self_attn.q_proj.weight", b + "attn_q.weight", [heads * headDim, hidden], q);
            Weight(p + "self_attn.k_proj.weight", b + "attn_k.weight", [kvHeads * headDim, hidden], k);
            Weight(p + "self_attn.v_proj.weight", b + "attn_v.weight", [kvHeads * headDim, hidden]);
            if (tensors.Contains(p + "self_attn.q_proj.bias"))
            {
                Weight(p + "self_attn.q_proj.bias", b + "attn_q.bias", [heads * headDim], arch == "llama" ? v => PermuteRotaryRows(v, heads, 1) : null, keepF32: true);
                Weight(p + "self_attn.k_proj.bias", b + "attn_k.bias", [kvHeads * headDim], arch == "llama" ? v => PermuteRotaryRows(v, kvHeads, 1) : null, keepF32: true);
                Weight(p + "self_attn.v_proj.bias", b + "attn_v.bias", [kvHeads * headDim], keepF32: true);
            }

            Weight(p + "self_attn.o_proj.weight", b + "attn_output.weight", [hidden, heads * headDim]);
            Weight(p + "post_attention_layernorm.weight", b + "ffn_norm.weight", [hidden], keepF32: true);
            Weight(p + "mlp.gate_proj.weight", b + "ffn_gate.weight", [intermediate, hidden]);
            Weight(p + "mlp.up_proj.weight", b + "ffn_up.weight", [intermediate, hidden]);
            Weight(p + "mlp.down_proj.weight", b + "ffn_down.weight", [hidden, intermediate]);
        }

        Weight("model.norm.weight", "output_norm.weight", [hidden], keepF32: true);
        var tied = (bool?)config["tie_word_embeddings"] ?? false;
        if (!tied && tensors.Contains("lm_head.weight")) Weight("lm_head.weight", "output.weight", [vocab, hidden]);
        return gguf.WriteTo(path);
    }

    /// <summary>
    /// llama.cpp's q/k row permutation: within each head, rows [0, d/2) hold the first halves of the rotary pairs and
    /// [d/2, d) the second halves (Hugging Face's rotate-half layout); ggml's llama rope rotates adjacent pairs, so row
    /// (h, i, j) of the result (pair i, member j) is row (h, j, i) of the source.
    /// </summary>
    public static float[] PermuteRotaryRows(float[] values, int heads, int rowLength)
    {
        var rows = values.Length / rowLength;
        var headRows = rows / heads;
        var half = headRows / 2;
        var result = new float[values.Length];
        for (var h = 0; h < heads; h++)
        {
            for (var i = 0; i < half; i++)
            {
                for (var j = 0; j < 2; j++)
                {
                    var target = h * headRows + i * 2 + j;
                    var source = h * headRows + j * half + i;
                    Array.Copy(values, (long)source * rowLength, result, (long)target * rowLength, rowLength);
                }
            }
        }

        return result;
    }

    /// <summary>The llama3 rope frequency factors convert_hf_to_gguf.py writes (ggml divides each frequency by its factor).</summary>
    public static float[] Llama3RopeFactors(int headDim, double theta, double factor, double lowFreqFactor, double highFreqFactor, double originalContext)
    {
        var lowWavelength = originalContext / lowFreqFactor;
        var highWavelength = originalContext / highFreqFactor;
        var factors = new float[headDim / 2];
        for (var i = 0; i < factors.Length; i++)
        {
            // As torch computes it in float32: 1 / theta ** (2i / d).
            var frequency = 1f / MathF.Pow((float)theta, 2 * i / (float)headDim);
            var wavelength = 2 * Math.PI / frequency;
            if (wavelength < highWavelength) factors[i] = 1;
            else if (wavelength > lowWavelength) factors[i] = (float)factor;
            else
            {
                var smooth = (originalContext / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                factors[i] = (float)(1 / ((1 - smooth) / factor + smooth));
            }
        }

        return factors;
    }

    private static void WriteValues(Stream stream, float[] values, GgmlType type)
    {
        const int chunk = 1 << 20;
        if (type == GgmlType.F32)
        {
            for (var i = 0; i < values.Length; i += chunk) stream.Write(MemoryMarshal.AsBytes(values.AsSpan(i, Math.Min(chunk, values.Length - i))));
            return;
        }

        var halves = new Half[Math.Min(chunk, values.Length)];
        for (var i = 0; i < values.Length; i += chunk)
        {
            var n = Math.Min(chunk, values.Length - i);
            for (var k = 0; k < n; k++) halves[k] = (Half)values[i + k];
            stream.Write(MemoryMarshal.AsBytes(halves.AsSpan(0, n)));
        }
    }

    /// <summary>A minimal safetensors reader (header JSON, F32/F16/BF16 data) returning float32.</summary>
    internal sealed class SafeTensors
    {
        private readonly Dictionary<string, (string File, string DType, long[] Shape, long Start, long Length)> _entries = new(StringComparer.Ordinal);

        /// <summary>Opens <c>model.safetensors</c> or the shards named by <c>model.safetensors.index.json</c>.</summary>
        public static SafeTensors Open(string folder)
        {
            var result = new SafeTensors();
            var index = Path.Combine(folder, "model.safetensors.index.json");
            var length = new byte[8];
            IEnumerable<string> files = File.Exists(index)
                ? JsonNode.Parse(File.ReadAllText(index))!["weight_map"]!.AsObject().Select(p => (string)p.Value!).Distinct().Select(f => Path.Combine(folder, f))
                : [Path.Combine(folder, "model.safetensors")];
            foreach (var file in files)
            {
                if (!File.Exists(file)) throw new InvalidDataException($"Weight file '{file}' is missing.");
                using var stream = File.OpenRead(file);
                stream.ReadExactly(length);
                var headerLength = BinaryPrimitives.ReadInt64LittleEndian(length);
                if (headerLength <= 0 || headerLength > 100_000_000) throw new InvalidDataException($"'{file}' has a safetensors header length of {headerLength}.");
                var header = new byte[headerLength];
                stream.ReadExactly(header);
                using var doc = JsonDocument.Parse(header);
                foreach (var entry in doc.RootElement.EnumerateObject().Where(e => e.Name != "__metadata__"))
                {
                    var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                    result._entries[entry.Name] = (file, entry.Value.GetProperty("dtype").GetString()!,
                        entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(), 8 + headerLength + offsets[0], offsets[1] - offsets[0]);
                }
            }

            return result;
        }

        /// <summary>Whether the checkpoint has the tensor.</summary>
        public bool Contains(string name) => _entries.ContainsKey(name);

        /// <summary>Reads a tensor as float32 after checking its shape.</summary>
        public float[] Read(string name, long[] shape)
        {
            if (!_entries.TryGetValue(name, out var e)) throw new InvalidDataException($"The checkpoint has no tensor '{name}'.");
            if (!e.Shape.SequenceEqual(shape)) throw new InvalidDataException($"Tensor '{name}' has shape [{string.Join(", ", e.Shape)}]; the config implies [{string.Join(", ", shape)}].");
            var count = checked((int)shape.Aggregate(1L, (a, b) => a * b));
            var size = e.DType switch { "F32" => 4, "F16" or "BF16" => 2, _ => throw new InvalidDataException($"Tensor '{name}' is {e.DType}; F32, F16 or BF16 expected.") };
            if (e.Length != (long)count * size) throw new InvalidDataException($"Tensor '{name}' spans {e.Length} bytes, not {(long)count * size}.");
            var result = new float[count];
            using var stream = File.OpenRead(e.File);
            stream.Position = e.Start;
            if (size == 4)
            {
                stream.ReadExactly(MemoryMarshal.AsBytes(result.AsSpan()));
                return result;
            }

            var raw = new ushort[Math.Min(count, 1 << 20)];
            for (var i = 0; i < count; i += raw.Length)
            {
                var n = Math.Min(raw.Length, count - i);
                stream.ReadExactly(MemoryMarshal.AsBytes(raw.AsSpan(0, n)));
                for (var k = 0; k < n; k++)
                {
                    result[i + k] = e.DType == "BF16" ? BitConverter.Int32BitsToSingle(raw[k] << 16) : (float)BitConverter.UInt16BitsToHalf(raw[k]);
                }
            }

            return result;
        }
    }
}
