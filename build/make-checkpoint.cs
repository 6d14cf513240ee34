// Writes a deterministic random-weight Hugging Face checkpoint with the exact shapes and file conventions of a real model,
// so 0.5B–1B conversion, loading and speed can be measured without downloading weights:
//   llama-3.2-1b  LlamaForCausalLM, 16 layers, hidden 2048, 32/8 heads of 64, MLP 8192, vocab 128256, llama3 rope scaling,
//                 tied embeddings (no lm_head.weight), bf16 model.safetensors
//   qwen2.5-0.5b  Qwen2ForCausalLM, 24 layers, hidden 896, 14/2 heads of 64, MLP 4864, vocab 151936, q/k/v biases, tied
// Weights are N(0, 0.02) (biases too), norm weights 1.0. Tensors are generated and written in 1 MiB-element chunks, each
// from its own seed (seed, tensor name, chunk), so memory stays small and any run with the same arguments writes the same bytes.
// No tokenizer files are written: `onnxlm convert` does not need them, and the benchmarks feed token ids.
//   dotnet run build/make-checkpoint.cs -- llama-3.2-1b /work/scale-models/llama-3.2-1b-random
//   dotnet run build/make-checkpoint.cs -- qwen2.5-0.5b /work/scale-models/qwen2.5-0.5b-random --seed 7
//   dotnet run build/make-checkpoint.cs -- llama-3.2-1b /tmp/small --layers 2 --hidden 256 --heads 8 --kv-heads 2 \
//       --intermediate 512 --vocab 1000      # same family conventions, test size (head_dim = hidden / heads unless --head-dim)
// Overrides: --layers --hidden --heads --kv-heads --head-dim --intermediate --vocab --max-positions --seed --dtype bf16|f32
#if !CHECKPOINT_LIBRARY
using System.Diagnostics;
using OnnxLM.Build;

if (args.Length < 2 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: dotnet run build/make-checkpoint.cs -- <llama-3.2-1b|qwen2.5-0.5b> <output folder> [--seed N] [--layers N] [--hidden N] [--heads N] [--kv-heads N] [--head-dim N] [--intermediate N] [--vocab N] [--max-positions N] [--dtype bf16|f32]");
    return 2;
}

try
{
    var spec = CheckpointSpec.Named(args[0]);
    var seed = 1234L;
    for (var i = 2; i < args.Length; i += 2)
    {
        if (i + 1 >= args.Length) throw new ArgumentException($"{args[i]} needs a value.");
        var value = args[i + 1];
        int Int() => int.TryParse(value, out var n) && n > 0 ? n : throw new ArgumentException($"{args[i]} needs a positive integer (found '{value}').");
        switch (args[i])
        {
            case "--seed": seed = long.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
            case "--layers": spec = spec with { Layers = Int() }; break;
            case "--hidden": spec = spec with { Hidden = Int() }; break;
            case "--heads": spec = spec with { Heads = Int() }; break;
            case "--kv-heads": spec = spec with { KvHeads = Int() }; break;
            case "--head-dim": spec = spec with { HeadDim = Int() }; break;
            case "--intermediate": spec = spec with { Intermediate = Int() }; break;
            case "--vocab": spec = spec with { Vocab = Int() }; break;
            case "--max-positions": spec = spec with { MaxPositions = Int() }; break;
            case "--dtype": spec = spec with { DType = value is "bf16" or "f32" ? value : throw new ArgumentException($"--dtype is bf16 or f32 (found '{value}').") }; break;
            default: throw new ArgumentException($"Unknown option '{args[i]}'.");
        }
    }

    if (!args.Contains("--head-dim") && (args.Contains("--hidden") || args.Contains("--heads")))
    {
        spec = spec with { HeadDim = spec.Hidden % spec.Heads == 0 ? spec.Hidden / spec.Heads : throw new ArgumentException($"{spec.Heads} heads do not divide hidden {spec.Hidden}: give --head-dim.") };
    }

    var watch = Stopwatch.StartNew();
    var bytes = CheckpointWriter.Write(spec, args[1], seed);
    Console.WriteLine($"{args[0]} → {args[1]}: {spec.ParameterCount():N0} parameters, {bytes / 1e9:F2} GB {spec.DType} in {watch.Elapsed.TotalSeconds:F1} s");
    return 0;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
#endif

namespace OnnxLM.Build
{
    using System.Buffers.Binary;
    using System.Runtime.InteropServices;
    using System.Text;
    using System.Text.Json;
    using System.Text.Json.Nodes;

    /// <summary>The shape of a Llama-family checkpoint and the config.json it is written with.</summary>
    internal sealed record CheckpointSpec(
        string Family, int Layers, int Hidden, int Heads, int KvHeads, int HeadDim, int Intermediate, int Vocab, int MaxPositions,
        string DType = "bf16")
    {
        /// <summary>Llama-3.2-1B or Qwen2.5-0.5B at full size.</summary>
        public static CheckpointSpec Named(string name) => name switch
        {
            "llama-3.2-1b" or "llama" => new("llama", 16, 2048, 32, 8, 64, 8192, 128256, 131072),
            "qwen2.5-0.5b" or "qwen2" => new("qwen2", 24, 896, 14, 2, 64, 4864, 151936, 32768),
            _ => throw new ArgumentException($"Unknown family '{name}': llama-3.2-1b or qwen2.5-0.5b."),
        };

        public bool Biases => Family == "qwen2";

        /// <summary>A special token id of the published model, or one of the last ids when a test-size vocabulary is smaller.</summary>
        private int Special(int id, int fromEnd) => id < Vocab ? id : Vocab - fromEnd;

        /// <summary>The tensors in file order (sorted by name, as safetensors writers do): name, shape, whether a norm (ones).</summary>
        public IEnumerable<(string Name, long[] Shape, bool Ones)> Tensors()
        {
            var list = new List<(string, long[], bool)> { ("model.embed_tokens.weight", [Vocab, Hidden], false), ("model.norm.weight", [Hidden], true) };
            for (var i = 0; i < Layers; i++)
            {
                var p = $"model.layers.{i}.";
                list.Add((p + "input_layernorm.weight", [Hidden], true));
                list.Add((p + "post_attention_layernorm.weight", [Hidden], true));
                list.Add((p + "self_attn.q_proj.weight", [Heads * HeadDim, Hidden], false));
                list.Add((p + "self_attn.k_proj.weight", [KvHeads * HeadDim, Hidden], false));
                list.Add((p + "self_attn.v_proj.weight", [KvHeads * HeadDim, Hidden], false));
                list.Add((p + "self_attn.o_proj.weight", [Hidden, Heads * HeadDim], false));
                if (Biases)
                {
                    list.Add((p + "self_attn.q_proj.bias", [Heads * HeadDim], false));
                    list.Add((p + "self_attn.k_proj.bias", [KvHeads * HeadDim], false));
                    list.Add((p + "self_attn.v_proj.bias", [KvHeads * HeadDim], false));
                }

                list.Add((p + "mlp.gate_proj.weight", [Intermediate, Hidden], false));
                list.Add((p + "mlp.up_proj.weight", [Intermediate, Hidden], false));
                list.Add((p + "mlp.down_proj.weight", [Hidden, Intermediate], false));
            }

            return list.OrderBy(t => t.Item1, StringComparer.Ordinal);
        }

        public long ParameterCount() => Tensors().Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

        /// <summary>config.json with the fields (and order) of the published model's file.</summary>
        public JsonObject Config()
        {
            var torchDType = DType == "bf16" ? "bfloat16" : "float32";
            if (Family == "llama")
            {
                return new JsonObject
                {
                    ["architectures"] = new JsonArray("LlamaForCausalLM"),
                    ["attention_bias"] = false,
                    ["attention_dropout"] = 0.0,
                    ["bos_token_id"] = Special(128000, 2),
                    ["eos_token_id"] = Special(128001, 1),
                    ["head_dim"] = HeadDim,
                    ["hidden_act"] = "silu",
                    ["hidden_size"] = Hidden,
                    ["initializer_range"] = 0.02,
                    ["intermediate_size"] = Intermediate,
                    ["max_position_embeddings"] = MaxPositions,
                    ["mlp_bias"] = false,
                    ["model_type"] = "llama",
                    ["num_attention_heads"] = Heads,
                    ["num_hidden_layers"] = Layers,
                    ["num_key_value_heads"] = KvHeads,
                    ["pretraining_tp"] = 1,
                    ["rms_norm_eps"] = 1e-05,
                    ["rope_scaling"] = new JsonObject
                    {
                        ["factor"] = 32.0,
                        ["high_freq_factor"] = 4.0,
                        ["low_freq_factor"] = 1.0,
                        ["original_max_position_embeddings"] = 8192,
                        ["rope_type"] = "llama3",
                    },
                    ["rope_theta"] = 500000.0,
                    ["tie_word_embeddings"] = true,
                    ["torch_dtype"] = torchDType,
                    ["transformers_version"] = "4.45.0.dev0",
                    ["use_cache"] = true,
                    ["vocab_size"] = Vocab,
                };
            }

            return new JsonObject
            {
                ["architectures"] = new JsonArray("Qwen2ForCausalLM"),
                ["attention_dropout"] = 0.0,
                ["bos_token_id"] = Special(151643, 1),
                ["eos_token_id"] = Special(151643, 1),
                ["hidden_act"] = "silu",
                ["hidden_size"] = Hidden,
                ["initializer_range"] = 0.02,
                ["intermediate_size"] = Intermediate,
                ["max_position_embeddings"] = MaxPositions,
                ["max_window_layers"] = Layers,
                ["model_type"] = "qwen2",
                ["num_attention_heads"] = Heads,
                ["num_hidden_layers"] = Layers,
                ["num_key_value_heads"] = KvHeads,
                ["rms_norm_eps"] = 1e-06,
                ["rope_theta"] = 1000000.0,
                ["sliding_window"] = MaxPositions,
                ["tie_word_embeddings"] = true,
                ["torch_dtype"] = torchDType,
                ["transformers_version"] = "4.40.1",
                ["use_cache"] = true,
                ["use_mrope"] = false,
                ["use_sliding_window"] = false,
                ["vocab_size"] = Vocab,
            };
        }

        /// <summary>generation_config.json as the published model has it.</summary>
        public JsonObject GenerationConfig() => Family == "llama"
            ? new JsonObject
            {
                ["_from_model_config"] = true, ["bos_token_id"] = Special(128000, 2), ["do_sample"] = true, ["eos_token_id"] = Special(128001, 1),
                ["temperature"] = 0.6, ["top_p"] = 0.9, ["transformers_version"] = "4.45.0.dev0",
            }
            : new JsonObject
            {
                ["bos_token_id"] = Special(151643, 1), ["do_sample"] = false, ["eos_token_id"] = Special(151643, 1), ["max_new_tokens"] = 2048,
                ["transformers_version"] = "4.37.0",
            };
    }

    /// <summary>Streams a checkpoint to config.json, generation_config.json and model.safetensors.</summary>
    internal static class CheckpointWriter
    {
        public const float Std = 0.02f;
        private const int Chunk = 1 << 20;

        /// <summary>Writes the folder; returns the safetensors file's size.</summary>
        public static long Write(CheckpointSpec spec, string folder, long seed)
        {
            if (spec.Heads % spec.KvHeads != 0) throw new ArgumentException($"{spec.Heads} heads are not a multiple of {spec.KvHeads} key/value heads.");
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "config.json"), PythonJson(spec.Config(), "") + "\n");
            File.WriteAllText(Path.Combine(folder, "generation_config.json"), PythonJson(spec.GenerationConfig(), "") + "\n");

            var elementSize = spec.DType == "bf16" ? 2 : 4;
            var dtype = spec.DType == "bf16" ? "BF16" : "F32";
            var tensors = spec.Tensors().ToList();
            var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
            long offset = 0;
            foreach (var (name, shape, _) in tensors)
            {
                var length = shape.Aggregate(1L, (a, b) => a * b) * elementSize;
                header[name] = new JsonObject
                {
                    ["dtype"] = dtype,
                    ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()),
                    ["data_offsets"] = new JsonArray(offset, offset + length),
                };
                offset += length;
            }

            // The header is padded with spaces to a multiple of 8 bytes, as the safetensors library writes it.
            var json = Encoding.UTF8.GetBytes(header.ToJsonString());
            var padded = new byte[(json.Length + 7) / 8 * 8];
            padded.AsSpan().Fill((byte)' ');
            json.CopyTo(padded, 0);

            var path = Path.Combine(folder, "model.safetensors");
            using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
            Span<byte> length8 = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length8, (ulong)padded.Length);
            file.Write(length8);
            file.Write(padded);
            var values = new float[Chunk];
            var bytes = new byte[Chunk * elementSize];
            foreach (var (name, shape, ones) in tensors)
            {
                var count = shape.Aggregate(1L, (a, b) => a * b);
                for (long start = 0, chunk = 0; start < count; start += Chunk, chunk++)
                {
                    var n = (int)Math.Min(Chunk, count - start);
                    Fill(values.AsSpan(0, n), ones, seed, name, chunk);
                    var span = bytes.AsSpan(0, n * elementSize);
                    if (elementSize == 4)
                    {
                        MemoryMarshal.AsBytes(values.AsSpan(0, n)).CopyTo(span);
                    }
                    else
                    {
                        for (var i = 0; i < n; i++) BinaryPrimitives.WriteUInt16LittleEndian(span[(2 * i)..], ToBFloat16(values[i]));
                    }

                    file.Write(span);
                }
            }

            return file.Length;
        }

        /// <summary>
        /// JSON as Python's json.dumps(indent=2) writes a config: floats keep their point or exponent (32.0, 1e-05), so
        /// readers meet the same number forms as in a published config.json.
        /// </summary>
        public static string PythonJson(JsonNode? node, string indent) => node switch
        {
            JsonObject o => o.Count == 0 ? "{}" : "{\n" + string.Join(",\n", o.Select(p => $"{indent}  {JsonValue.Create(p.Key).ToJsonString()}: {PythonJson(p.Value, indent + "  ")}")) + $"\n{indent}}}",
            JsonArray a => "[\n" + string.Join(",\n", a.Select(v => $"{indent}  {PythonJson(v, indent + "  ")}")) + $"\n{indent}]",
            JsonValue v when v.TryGetValue<double>(out var d) && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out _) == false => PythonFloat(d),
            null => "null",
            _ => node.ToJsonString(),
        };

        private static string PythonFloat(double d)
        {
            if (d == Math.Floor(d) && Math.Abs(d) < 1e16) return d.ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
            var text = d.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            // .NET writes 1E-05; Python writes 1e-05.
            return text.Replace("E", "e", StringComparison.Ordinal);
        }

        /// <summary>The values of one chunk of a tensor: ones for norms, else N(0, 0.02) from (seed, name, chunk).</summary>
        public static void Fill(Span<float> values, bool ones, long seed, string name, long chunk)
        {
            if (ones)
            {
                values.Fill(1f);
                return;
            }

            var state = Mix((ulong)seed ^ Fnv1a(name) ^ ((ulong)chunk * 0x9E3779B97F4A7C15UL));
            for (var i = 0; i < values.Length; i += 2)
            {
                // Box–Muller from two uniform doubles in (0, 1].
                var u1 = ((Next(ref state) >> 11) + 1) * (1.0 / 9007199254740992.0);
                var u2 = (Next(ref state) >> 11) * (1.0 / 9007199254740992.0);
                var r = Math.Sqrt(-2 * Math.Log(u1)) * Std;
                values[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
                if (i + 1 < values.Length) values[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
            }
        }

        /// <summary>float32 → bfloat16 bits, rounding to nearest even (as torch's conversion does).</summary>
        public static ushort ToBFloat16(float value)
        {
            var bits = BitConverter.SingleToUInt32Bits(value);
            if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
            return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
        }

        /// <summary>bfloat16 bits → float32.</summary>
        public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

        private static ulong Fnv1a(string text)
        {
            var hash = 14695981039346656037UL;
            foreach (var c in text)
            {
                hash = (hash ^ c) * 1099511628211UL;
            }

            return hash;
        }

        // SplitMix64: a seed mixer and a fast generator whose output is a fixed function of its state.
        private static ulong Mix(ulong z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        private static ulong Next(ref ulong state)
        {
            state += 0x9E3779B97F4A7C15UL;
            return Mix(state);
        }
    }
}
