using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace OnnxLM.ModelBuilder.SafeTensors;

/// <summary>
/// Reads Hugging Face safetensors checkpoints: one <c>model.safetensors</c> or shards listed by
/// <c>model.safetensors.index.json</c>. Format: u64 little-endian header length, a JSON header mapping
/// tensor names to dtype, shape and [begin, end) byte offsets into the data that follows.
/// F32, F16 and BF16 tensors are returned as float32.
/// </summary>
internal sealed class SafeTensorsFile
{
    private readonly Dictionary<string, (string File, string DType, long[] Shape, long Begin, long End, long DataStart)> _tensors = new(StringComparer.Ordinal);

    private SafeTensorsFile() { }

    public IEnumerable<string> Names => _tensors.Keys;

    public static SafeTensorsFile Open(string folder)
    {
        var result = new SafeTensorsFile();
        var index = Path.Combine(folder, "model.safetensors.index.json");
        var single = Path.Combine(folder, "model.safetensors");
        if (File.Exists(index))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(index));
            var files = doc.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Value.GetString()!).Distinct();
            foreach (var file in files)
            {
                result.ReadHeader(Path.Combine(folder, file));
            }
        }
        else if (File.Exists(single))
        {
            result.ReadHeader(single);
        }
        else
        {
            throw new ModelFormatException($"No weights in '{folder}': expected model.safetensors or model.safetensors.index.json.", folder);
        }

        return result;
    }

    private void ReadHeader(string file)
    {
        if (!File.Exists(file))
        {
            throw new ModelFormatException($"Weight file '{file}' is missing.", file);
        }

        using var stream = File.OpenRead(file);
        Span<byte> lengthBytes = stackalloc byte[8];
        if (stream.Read(lengthBytes) != 8)
        {
            throw new ModelFormatException($"'{file}' is too short to be a safetensors file.", file);
        }

        var headerLength = BinaryPrimitives.ReadInt64LittleEndian(lengthBytes);
        if (headerLength <= 0 || headerLength > 100_000_000 || 8 + headerLength > stream.Length)
        {
            throw new ModelFormatException($"'{file}' has an invalid safetensors header length {headerLength}.", file);
        }

        var header = new byte[headerLength];
        stream.ReadExactly(header);
        try
        {
            using var doc = JsonDocument.Parse(header);
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    continue;
                }

                var dtype = entry.Value.GetProperty("dtype").GetString()!;
                var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                var dataLength = stream.Length - 8 - headerLength;
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength || shape.Any(d => d < 0))
                {
                    throw new ModelFormatException(
                        $"'{file}': tensor '{entry.Name}' has data_offsets [{string.Join(", ", offsets)}] or shape [{string.Join(", ", shape)}] outside the file's {dataLength} data bytes.", file);
                }

                _tensors[entry.Name] = (file, dtype, shape, offsets[0], offsets[1], 8 + headerLength);
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ModelFormatException($"'{file}' has an unreadable safetensors header: {e.Message}", file, e);
        }
    }

    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>Reads a tensor as float32, checking its shape.</summary>
    public float[] Read(string name, params long[] expectedShape)
    {
        if (!_tensors.TryGetValue(name, out var t))
        {
            throw new ModelFormatException($"The checkpoint has no tensor '{name}'.", null);
        }

        if (!t.Shape.SequenceEqual(expectedShape))
        {
            throw new ModelFormatException(
                $"Tensor '{name}' has shape [{string.Join(", ", t.Shape)}]; the config implies [{string.Join(", ", expectedShape)}].", t.File);
        }

        var count = checked((int)expectedShape.Aggregate(1L, (a, b) => a * b));
        var elementSize = t.DType switch
        {
            "F32" => 4,
            "F16" or "BF16" => 2,
            _ => throw new ModelFormatException($"Tensor '{name}' has dtype {t.DType}; supported: F32, F16, BF16.", t.File),
        };
        if (t.End - t.Begin != (long)count * elementSize)
        {
            throw new ModelFormatException($"Tensor '{name}' spans {t.End - t.Begin} bytes; {count} {t.DType} values need {count * elementSize}.", t.File);
        }

        // Read a slice at a time so a large tensor (a 1 GB embedding) is never also held as raw bytes.
        var result = new float[count];
        var buffer = new byte[Math.Min(t.End - t.Begin, 1 << 22)];
        using var stream = File.OpenRead(t.File);
        stream.Position = t.DataStart + t.Begin;
        for (var done = 0; done < count;)
        {
            var n = Math.Min(buffer.Length / elementSize, count - done);
            var bytes = buffer.AsSpan(0, n * elementSize);
            stream.ReadExactly(bytes);
            var target = result.AsSpan(done, n);
            switch (t.DType)
            {
                case "F32":
                    MemoryMarshal.Cast<byte, float>(bytes).CopyTo(target);
                    break;
                case "F16":
                    var halves = MemoryMarshal.Cast<byte, Half>(bytes);
                    for (var i = 0; i < n; i++) target[i] = (float)halves[i];
                    break;
                default:
                    var raw = MemoryMarshal.Cast<byte, ushort>(bytes);
                    for (var i = 0; i < n; i++) target[i] = BitConverter.Int32BitsToSingle(raw[i] << 16);
                    break;
            }

            done += n;
        }

        return result;
    }
}
