namespace OnnxLM.Tests;

/// <summary>
/// The test's own reference for <c>ModelExplainer.Parameters</c>: counts the parameters of an ONNX model — the elements of its graph's initializers — by walking the protobuf
/// wire format and reading only the tensor shapes, so the weights themselves are skipped, not loaded.
/// </summary>
internal static class ReferenceParameterCounter
{
    public static (long Parameters, int Initializers) Count(string path)
    {
        using var stream = File.OpenRead(path);
        long parameters = 0;
        var initializers = 0;
        foreach (var (field, start, length) in Fields(stream, 0, stream.Length))
        {
            if (field != 7) continue; // ModelProto.graph
            foreach (var (graphField, tensorStart, tensorLength) in Fields(stream, start, length))
            {
                if (graphField != 5) continue; // GraphProto.initializer
                long elements = 1;
                foreach (var dim in Dims(stream, tensorStart, tensorLength)) elements *= dim;
                parameters += elements;
                initializers++;
            }
        }

        return (parameters, initializers);
    }

    /// <summary>The length-delimited fields of a message, as (number, offset, length); other wire types are skipped.</summary>
    private static List<(int Field, long Start, long Length)> Fields(Stream s, long start, long length)
    {
        var fields = new List<(int, long, long)>();
        s.Position = start;
        var end = start + length;
        while (s.Position < end)
        {
            var key = ReadVarint(s);
            var (field, wire) = ((int)(key >> 3), (int)(key & 7));
            switch (wire)
            {
                case 0: ReadVarint(s); break;
                case 1: s.Position += 8; break;
                case 5: s.Position += 4; break;
                case 2:
                    var n = (long)ReadVarint(s);
                    fields.Add((field, s.Position, n));
                    s.Position += n;
                    break;
                default: throw new InvalidDataException($"'{(s as FileStream)?.Name}' is not an ONNX model (protobuf wire type {wire}).");
            }
        }

        return fields;
    }

    private static List<long> Dims(Stream s, long start, long length)
    {
        var dims = new List<long>();
        s.Position = start;
        var end = start + length;
        while (s.Position < end)
        {
            var key = ReadVarint(s);
            var (field, wire) = ((int)(key >> 3), (int)(key & 7));
            if (field == 1 && wire == 0)
            {
                dims.Add((long)ReadVarint(s));
            }
            else if (field == 1 && wire == 2)
            {
                var packedEnd = (long)ReadVarint(s) + s.Position;
                while (s.Position < packedEnd) dims.Add((long)ReadVarint(s));
            }
            else
            {
                switch (wire)
                {
                    case 0: ReadVarint(s); break;
                    case 1: s.Position += 8; break;
                    case 5: s.Position += 4; break;
                    case 2: var n = (long)ReadVarint(s); s.Position += n; break;
                    default: throw new InvalidDataException("Not an ONNX tensor.");
                }
            }
        }

        return dims;
    }

    private static ulong ReadVarint(Stream s)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = s.ReadByte();
            if (b < 0) throw new InvalidDataException("The ONNX file ends inside a field.");
            value |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return value;
        }

        throw new InvalidDataException("A malformed varint in the ONNX file.");
    }
}
