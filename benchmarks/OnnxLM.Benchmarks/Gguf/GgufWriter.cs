using System.Text;

namespace OnnxLM.Benchmarks.Gguf;

/// <summary>The ggml tensor types this writer emits (values as ggml numbers them).</summary>
internal enum GgmlType : uint
{
    /// <summary>32-bit float.</summary>
    F32 = 0,

    /// <summary>IEEE half.</summary>
    F16 = 1,
}

/// <summary>
/// Writes a GGUF version 3 file: the magic "GGUF", version, tensor count and metadata count, the metadata key/value
/// pairs, one info record per tensor (name, dimensions innermost first, type, offset into the data section), then the
/// data section aligned to <see cref="Alignment"/> with every tensor aligned to it as well. Tensor data is produced one
/// tensor at a time by a callback, so a multi-gigabyte model never sits in memory whole.
/// </summary>
internal sealed class GgufWriter
{
    /// <summary>GGUF's default alignment (<c>general.alignment</c> absent).</summary>
    public const int Alignment = 32;

    /// <summary>"GGUF" read as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>The format version written.</summary>
    public const uint Version = 3;

    private readonly List<(string Key, Action<BinaryWriter> Write)> _metadata = [];
    private readonly List<Tensor> _tensors = [];

    /// <summary>GGUF metadata value types.</summary>
    public enum ValueType : uint
    {
        /// <summary>u8.</summary>
        UInt8 = 0,
        /// <summary>i8.</summary>
        Int8 = 1,
        /// <summary>u16.</summary>
        UInt16 = 2,
        /// <summary>i16.</summary>
        Int16 = 3,
        /// <summary>u32.</summary>
        UInt32 = 4,
        /// <summary>i32.</summary>
        Int32 = 5,
        /// <summary>f32.</summary>
        Float32 = 6,
        /// <summary>bool (one byte).</summary>
        Bool = 7,
        /// <summary>u64 length + UTF-8 bytes.</summary>
        String = 8,
        /// <summary>u32 element type, u64 count, elements.</summary>
        Array = 9,
        /// <summary>u64.</summary>
        UInt64 = 10,
        /// <summary>i64.</summary>
        Int64 = 11,
        /// <summary>f64.</summary>
        Float64 = 12,
    }

    /// <summary>The tensors added so far, in file order.</summary>
    public IReadOnlyList<Tensor> Tensors => _tensors;

    /// <summary>Adds a string value.</summary>
    public void Add(string key, string value) => AddValue(key, w => { w.Write((uint)ValueType.String); WriteString(w, value); });

    /// <summary>Adds a u32 value.</summary>
    public void Add(string key, uint value) => AddValue(key, w => { w.Write((uint)ValueType.UInt32); w.Write(value); });

    /// <summary>Adds an f32 value.</summary>
    public void Add(string key, float value) => AddValue(key, w => { w.Write((uint)ValueType.Float32); w.Write(value); });

    /// <summary>Adds a bool value.</summary>
    public void Add(string key, bool value) => AddValue(key, w => { w.Write((uint)ValueType.Bool); w.Write(value); });

    /// <summary>Adds an array of strings.</summary>
    public void Add(string key, IReadOnlyList<string> values) => AddValue(key, w =>
    {
        w.Write((uint)ValueType.Array);
        w.Write((uint)ValueType.String);
        w.Write((ulong)values.Count);
        foreach (var v in values) WriteString(w, v);
    });

    /// <summary>
    /// Adds a tensor. <paramref name="shape"/> is in row-major (NumPy/PyTorch) order, outermost first; GGUF stores it
    /// reversed (ne[0] innermost). <paramref name="write"/> must write exactly the tensor's bytes when called.
    /// </summary>
    public void AddTensor(string name, long[] shape, GgmlType type, Action<Stream> write)
    {
        if (_tensors.Any(t => t.Name == name)) throw new ArgumentException($"Tensor '{name}' was added twice.", nameof(name));
        if (shape.Length is 0 or > 4 || shape.Any(d => d <= 0)) throw new ArgumentException($"Tensor '{name}' has shape [{string.Join(", ", shape)}]; GGUF takes 1 to 4 positive dimensions.", nameof(shape));
        var elements = shape.Aggregate(1L, (a, b) => a * b);
        _tensors.Add(new Tensor(name, shape.Reverse().ToArray(), type, elements * (type == GgmlType.F32 ? 4 : 2), write));
    }

    /// <summary>Writes the file (header, tensor infos, aligned data) and returns its size in bytes.</summary>
    public long WriteTo(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = path + ".partial";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(Version);
            writer.Write((ulong)_tensors.Count);
            writer.Write((ulong)_metadata.Count);
            foreach (var (key, write) in _metadata)
            {
                WriteString(writer, key);
                write(writer);
            }

            long offset = 0;
            foreach (var tensor in _tensors)
            {
                WriteString(writer, tensor.Name);
                writer.Write((uint)tensor.Dimensions.Length);
                foreach (var d in tensor.Dimensions) writer.Write((ulong)d);
                writer.Write((uint)tensor.Type);
                writer.Write((ulong)offset);
                tensor.Offset = offset;
                offset = AlignUp(offset + tensor.ByteCount);
            }

            writer.Flush();
            Pad(stream);
            var dataStart = stream.Position;
            foreach (var tensor in _tensors)
            {
                var before = stream.Position;
                tensor.Write(stream);
                var written = stream.Position - before;
                if (written != tensor.ByteCount)
                {
                    throw new InvalidOperationException($"Tensor '{tensor.Name}' wrote {written} bytes; its shape and type take {tensor.ByteCount}.");
                }

                Pad(stream);
                if (stream.Position - dataStart != AlignUp(tensor.Offset + tensor.ByteCount)) throw new InvalidOperationException($"Tensor '{tensor.Name}' ended off its offset.");
            }
        }

        File.Move(temporary, path, overwrite: true);
        return new FileInfo(path).Length;
    }

    private void AddValue(string key, Action<BinaryWriter> write)
    {
        if (_metadata.Any(m => m.Key == key)) throw new ArgumentException($"Metadata key '{key}' was added twice.", nameof(key));
        _metadata.Add((key, write));
    }

    private static long AlignUp(long value) => (value + Alignment - 1) / Alignment * Alignment;

    private static void Pad(Stream stream)
    {
        var padding = (int)(AlignUp(stream.Position) - stream.Position);
        for (var i = 0; i < padding; i++) stream.WriteByte(0);
    }

    private static void WriteString(BinaryWriter writer, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    /// <summary>One tensor: its name, GGUF dimensions (innermost first), type, size and data callback.</summary>
    internal sealed record Tensor(string Name, long[] Dimensions, GgmlType Type, long ByteCount, Action<Stream> Write)
    {
        /// <summary>Offset into the data section, set when the file is written.</summary>
        public long Offset { get; set; }
    }
}
