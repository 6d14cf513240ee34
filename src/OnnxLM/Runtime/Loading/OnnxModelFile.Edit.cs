using System.Text;

namespace OnnxLM;

/// <summary>Small rewrites of the graph for the explain views: renamed node outputs, appended nodes, initializers and outputs.</summary>
internal sealed partial class OnnxModelFile
{
    /// <summary>A node to append: operator (default domain, no attributes), inputs and outputs.</summary>
    public sealed record NewNode(string OpType, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs);

    /// <summary>An initializer to append: name, shape, ONNX element type (1 float, 10 float16) and its little-endian bytes.</summary>
    public sealed record NewInitializer(string Name, IReadOnlyList<long> Dims, int DataType, byte[] Raw);

    /// <summary>
    /// The model's bytes with node outputs renamed (<paramref name="renamedOutputs"/>: old name → new name, applied to the
    /// node that produces it), <paramref name="nodes"/> and <paramref name="initializers"/> appended, and
    /// <paramref name="outputs"/> added as graph outputs of element type <paramref name="outputType"/>. ONNX Runtime sorts
    /// the nodes itself, so appended nodes may feed nodes written before them.
    /// </summary>
    public byte[] Edited(IReadOnlyDictionary<string, string> renamedOutputs, IReadOnlyList<NewNode> nodes, IReadOnlyList<NewInitializer> initializers,
        IReadOnlyList<string> outputs, int outputType = 1)
    {
        var original = ModelFile.ReadAllBytes(_path, ModelFile.MaxGraphBytes);
        var (start, length, keyStart) = Graph;
        var graph = new MemoryStream();
        var at = start;
        foreach (var node in Nodes.Where(n => n.Outputs.Any(renamedOutputs.ContainsKey)).OrderBy(n => n.Span.Start))
        {
            graph.Write(original.AsSpan((int)at, (int)(node.Span.Start - at)));
            graph.Write(RenameOutputs(original.AsSpan((int)node.Span.Start, (int)(node.Span.End - node.Span.Start)), renamedOutputs));
            at = node.Span.End;
        }

        graph.Write(original.AsSpan((int)at, (int)(start + length - at)));
        foreach (var node in nodes) Field(graph, 1, EncodeNode(node));
        foreach (var init in initializers) Field(graph, 5, EncodeInitializer(init));
        foreach (var name in outputs)
        {
            // ValueInfoProto { name = 1; type = 2: TypeProto { tensor_type = 1: { elem_type = 1 } } }
            var tensorType = new MemoryStream();
            tensorType.WriteByte(0x08);
            tensorType.Write(Varint((ulong)outputType));
            var typeProto = new MemoryStream();
            Field(typeProto, 1, tensorType.ToArray());
            var valueInfo = new MemoryStream();
            Field(valueInfo, 1, Encoding.UTF8.GetBytes(name));
            Field(valueInfo, 2, typeProto.ToArray());
            Field(graph, 12, valueInfo.ToArray());
        }

        var result = new MemoryStream();
        result.Write(original.AsSpan(0, (int)keyStart));
        Field(result, 7, graph.ToArray()); // ModelProto.graph
        result.Write(original.AsSpan((int)(start + length)));
        return result.ToArray();
    }

    /// <summary>A NodeProto field (key, length, message) with its output names (field 2) replaced where renamed; other fields copied as they are.</summary>
    private static byte[] RenameOutputs(ReadOnlySpan<byte> field, IReadOnlyDictionary<string, string> renamed)
    {
        var reader = new ProtoReader(field.ToArray(), "NodeProto field");
        reader.Next(out _, out _);
        var (messageStart, messageLength) = reader.ReadLengthDelimited();
        var message = field.Slice((int)messageStart, (int)messageLength).ToArray();
        var node = new ProtoReader(message, "NodeProto");
        var rewritten = new MemoryStream();
        for (var from = node.Position; node.Next(out var number, out var wire); from = node.Position)
        {
            if (number == 2 && wire == ProtoReader.LengthDelimited)
            {
                var name = node.ReadString();
                Field(rewritten, 2, Encoding.UTF8.GetBytes(renamed.GetValueOrDefault(name, name)));
                continue;
            }

            node.Skip(wire);
            rewritten.Write(message.AsSpan((int)from, (int)(node.Position - from)));
        }

        return [.. Key(1, ProtoReader.LengthDelimited), .. Varint((ulong)rewritten.Length), .. rewritten.ToArray()];
    }

    private static byte[] EncodeNode(NewNode node)
    {
        var message = new MemoryStream();
        foreach (var input in node.Inputs) Field(message, 1, Encoding.UTF8.GetBytes(input));
        foreach (var output in node.Outputs) Field(message, 2, Encoding.UTF8.GetBytes(output));
        Field(message, 3, Encoding.UTF8.GetBytes("explain/" + node.Outputs[0]));
        Field(message, 4, Encoding.UTF8.GetBytes(node.OpType));
        return message.ToArray();
    }

    private static byte[] EncodeInitializer(NewInitializer init)
    {
        // TensorProto: dims 1 (varint, repeated), data_type 2, name 8, raw_data 9.
        var message = new MemoryStream();
        foreach (var d in init.Dims)
        {
            message.Write(Key(1, ProtoReader.VarintType));
            message.Write(Varint((ulong)d));
        }

        message.Write(Key(2, ProtoReader.VarintType));
        message.Write(Varint((ulong)init.DataType));
        Field(message, 8, Encoding.UTF8.GetBytes(init.Name));
        Field(message, 9, init.Raw);
        return message.ToArray();
    }

    private static byte[] Key(int field, int wire) => Varint((ulong)((field << 3) | wire));

    private static void Field(Stream stream, int field, ReadOnlySpan<byte> value)
    {
        stream.Write(Key(field, ProtoReader.LengthDelimited));
        stream.Write(Varint((ulong)value.Length));
        stream.Write(value);
    }
}
