using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using OnnxLM.Benchmarks.Gguf;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>
/// The scale benchmark's GGUF writer (benchmarks/OnnxLM.Benchmarks/Gguf, compiled in here) on tiny checkpoints, read back
/// by an independent parser of the GGUF v3 layout: header, metadata types and values, tensor infos (dimensions innermost
/// first, types, 32-byte aligned offsets), and the data itself — llama's q/k rows in ggml's interleaved rotary order,
/// Qwen2's left as they are, norms and biases in F32 in an F16 file, the llama3 rope factors.
/// (That llama.cpp runs the files to OnnxLM's tokens is checked by the benchmark itself: `scale` fails on a mismatch.)
/// </summary>
public sealed class GgufWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gguf-writer-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Checkpoint(string modelType, bool llama3)
    {
        var config = new DecoderConfig
        {
            ModelType = "llama", HiddenSize = 8, IntermediateSize = 12, AttentionHeadCount = 2, KeyValueHeadCount = 1, HeadSize = 4,
            LayerCount = 1, VocabularySize = 16, MaxPositions = 64, TieWordEmbeddings = true, AttentionBias = modelType == "qwen2",
        };
        var folder = Path.Combine(_dir, modelType);
        Directory.CreateDirectory(folder);
        var checkpoint = RandomCheckpoint.For(config, 3);
        RandomCheckpoint.WriteSafeTensors(Path.Combine(folder, "model.safetensors"), checkpoint.Tensors);
        var json = new JsonObject
        {
            ["model_type"] = modelType, ["hidden_size"] = 8, ["intermediate_size"] = 12, ["num_attention_heads"] = 2, ["num_key_value_heads"] = 1,
            ["num_hidden_layers"] = 1, ["vocab_size"] = 16, ["max_position_embeddings"] = 64, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 500000.0,
            ["tie_word_embeddings"] = true,
        };
        if (llama3)
        {
            json["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3", ["factor"] = 32.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 16 };
        }

        File.WriteAllText(Path.Combine(folder, "config.json"), json.ToJsonString());
        _checkpoints[folder] = checkpoint;
        return folder;
    }

    private readonly Dictionary<string, RandomCheckpoint> _checkpoints = [];

    [Fact]
    public void LlamaF16FileHasTheLayoutLlamaCppReads()
    {
        var folder = Checkpoint("llama", llama3: true);
        var path = Path.Combine(_dir, "llama-f16.gguf");
        var size = CheckpointGguf.Write(folder, path, GgmlType.F16);
        var file = GgufFile.Read(path);
        Assert.Equal(new FileInfo(path).Length, size);
        Assert.Equal("llama", file.Metadata["general.architecture"]);
        Assert.Equal(8u, file.Metadata["llama.embedding_length"]);
        Assert.Equal(12u, file.Metadata["llama.feed_forward_length"]);
        Assert.Equal(1u, file.Metadata["llama.block_count"]);
        Assert.Equal(2u, file.Metadata["llama.attention.head_count"]);
        Assert.Equal(1u, file.Metadata["llama.attention.head_count_kv"]);
        Assert.Equal(4u, file.Metadata["llama.rope.dimension_count"]);
        Assert.Equal(64u, file.Metadata["llama.context_length"]);
        Assert.Equal(16u, file.Metadata["llama.vocab_size"]);
        Assert.Equal(500000f, file.Metadata["llama.rope.freq_base"]);
        Assert.Equal(1e-5f, file.Metadata["llama.attention.layer_norm_rms_epsilon"]);
        Assert.Equal(1u, file.Metadata["general.file_type"]);
        Assert.Equal("none", file.Metadata["tokenizer.ggml.model"]);

        // Tied: no output.weight; 2-D weights F16 with dimensions innermost first; norms and rope factors F32.
        Assert.DoesNotContain(file.Tensors, t => t.Name == "output.weight");
        var q = file.Tensors.Single(t => t.Name == "blk.0.attn_q.weight");
        Assert.Equal([8L, 8L], q.Dimensions);
        Assert.Equal(1u, q.Type);
        Assert.Equal([8L, 16L], file.Tensors.Single(t => t.Name == "token_embd.weight").Dimensions);
        Assert.Equal([12L, 8L], file.Tensors.Single(t => t.Name == "blk.0.ffn_down.weight").Dimensions);
        Assert.Equal(0u, file.Tensors.Single(t => t.Name == "blk.0.attn_norm.weight").Type);
        Assert.Equal(0u, file.Tensors.Single(t => t.Name == "rope_freqs.weight").Type);
        Assert.All(file.Tensors, t => Assert.Equal(0, t.Offset % 32));
        Assert.Equal(0, file.DataStart % 32);

        // q (2 heads of 4) and k (1 head of 4): rows of each head reordered [0, 2, 1, 3] (pair i's two members adjacent).
        var source = _checkpoints[folder];
        var qSource = source["model.layers.0.self_attn.q_proj.weight"];
        var qRows = file.ReadF16(path, q, 8);
        int[] order = [0, 2, 1, 3, 4, 6, 5, 7];
        for (var r = 0; r < 8; r++)
        {
            for (var c = 0; c < 8; c++) Assert.Equal((float)(Half)qSource[order[r] * 8 + c], qRows[r * 8 + c]);
        }

        var kRows = file.ReadF16(path, file.Tensors.Single(t => t.Name == "blk.0.attn_k.weight"), 8);
        var kSource = source["model.layers.0.self_attn.k_proj.weight"];
        for (var r = 0; r < 4; r++) Assert.Equal((float)(Half)kSource[order[r] * 8 + 5], kRows[r * 8 + 5]);

        // v is not permuted.
        var vRows = file.ReadF16(path, file.Tensors.Single(t => t.Name == "blk.0.attn_v.weight"), 8);
        Assert.Equal((float)(Half)source["model.layers.0.self_attn.v_proj.weight"][1 * 8 + 3], vRows[1 * 8 + 3]);

        // llama3 factors for head size 4, theta 5e5, original context 16 (wavelength bounds 16/4 = 4 and 16/1 = 16):
        // frequency 1 has wavelength 2π, between the bounds, so it is smoothed: s = (16/2π − 1)/(4 − 1), factor
        // 1/((1 − s)/32 + s) ≈ 1.885; frequency 5e5^-0.5 (wavelength ≈ 4443 > 16) gets the full factor 32.
        var s = (16 / (2 * Math.PI) - 1) / 3;
        var factors = file.ReadF32(path, file.Tensors.Single(t => t.Name == "rope_freqs.weight"));
        Assert.Equal(2, factors.Length);
        Assert.Equal(1 / ((1 - s) / 32 + s), factors[0], 5);
        Assert.Equal(32f, factors[1]);
    }

    [Fact]
    public void Qwen2F32FileKeepsRowsAndWritesBiases()
    {
        var folder = Checkpoint("qwen2", llama3: false);
        var path = Path.Combine(_dir, "qwen-f32.gguf");
        CheckpointGguf.Write(folder, path, GgmlType.F32);
        var file = GgufFile.Read(path);
        Assert.Equal("qwen2", file.Metadata["general.architecture"]);
        Assert.Equal(0u, file.Metadata["general.file_type"]);
        Assert.Equal(8u, file.Metadata["qwen2.embedding_length"]);
        Assert.DoesNotContain(file.Tensors, t => t.Name == "rope_freqs.weight");
        var source = _checkpoints[folder];
        var q = file.ReadF32(path, file.Tensors.Single(t => t.Name == "blk.0.attn_q.weight"));
        Assert.Equal(source["model.layers.0.self_attn.q_proj.weight"], q);
        var bias = file.Tensors.Single(t => t.Name == "blk.0.attn_k.bias");
        Assert.Equal([4L], bias.Dimensions);
        Assert.Equal(source["model.layers.0.self_attn.k_proj.bias"], file.ReadF32(path, bias));
        // token_embd, 12 per layer (2 norms, q/k/v weights and biases, o, gate, up, down), output_norm; tied: no output.
        Assert.Equal(14, file.Tensors.Count);
    }

    [Fact]
    public void WriterRefusesATensorWhoseCallbackWritesTheWrongSize()
    {
        var writer = new GgufWriter();
        writer.AddTensor("t", [2, 3], GgmlType.F32, s => s.Write(new byte[20]));
        var e = Assert.Throws<InvalidOperationException>(() => writer.WriteTo(Path.Combine(_dir, "bad.gguf")));
        Assert.Contains("'t' wrote 20 bytes", e.Message);
        Assert.False(File.Exists(Path.Combine(_dir, "bad.gguf")));
    }

    /// <summary>A GGUF v3 parser written from the format's description, independent of the writer.</summary>
    private sealed record GgufFile(Dictionary<string, object> Metadata, List<GgufFile.Info> Tensors, long DataStart)
    {
        public sealed record Info(string Name, long[] Dimensions, uint Type, long Offset);

        public static GgufFile Read(string path)
        {
            using var reader = new BinaryReader(File.OpenRead(path));
            Assert.Equal("GGUF", Encoding.ASCII.GetString(reader.ReadBytes(4)));
            Assert.Equal(3u, reader.ReadUInt32());
            var tensorCount = reader.ReadUInt64();
            var kvCount = reader.ReadUInt64();
            string Str() => Encoding.UTF8.GetString(reader.ReadBytes(checked((int)reader.ReadUInt64())));
            object Value(uint type) => type switch
            {
                4 => reader.ReadUInt32(),
                6 => reader.ReadSingle(),
                7 => reader.ReadByte() != 0,
                8 => Str(),
                9 => Enumerable.Range(0, 1).Select(_ => { var t = reader.ReadUInt32(); var n = reader.ReadUInt64(); return (object)Enumerable.Range(0, (int)n).Select(_ => Value(t)).ToArray(); }).Single(),
                _ => throw new InvalidDataException($"metadata type {type} is not expected here"),
            };
            var metadata = new Dictionary<string, object>();
            for (var i = 0ul; i < kvCount; i++)
            {
                var key = Str();
                metadata[key] = Value(reader.ReadUInt32());
            }

            var tensors = new List<Info>();
            for (var i = 0ul; i < tensorCount; i++)
            {
                var name = Str();
                var dims = Enumerable.Range(0, (int)reader.ReadUInt32()).Select(_ => (long)reader.ReadUInt64()).ToArray();
                tensors.Add(new Info(name, dims, reader.ReadUInt32(), (long)reader.ReadUInt64()));
            }

            var start = (reader.BaseStream.Position + 31) / 32 * 32;
            return new GgufFile(metadata, tensors, start);
        }

        private byte[] Bytes(string path, Info t, int elementSize)
        {
            using var stream = File.OpenRead(path);
            stream.Position = DataStart + t.Offset;
            var bytes = new byte[t.Dimensions.Aggregate(1L, (a, b) => a * b) * elementSize];
            stream.ReadExactly(bytes);
            return bytes;
        }

        public float[] ReadF32(string path, Info t)
        {
            Assert.Equal(0u, t.Type);
            return MemoryMarshal.Cast<byte, float>(Bytes(path, t, 4)).ToArray();
        }

        public float[] ReadF16(string path, Info t, int rowLength)
        {
            Assert.Equal(1u, t.Type);
            Assert.Equal(rowLength, t.Dimensions[0]);
            return MemoryMarshal.Cast<byte, Half>(Bytes(path, t, 2)).ToArray().Select(h => (float)h).ToArray();
        }
    }
}
