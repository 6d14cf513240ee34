namespace OnnxLM;

/// <summary>
/// A read-only view of an ONNX model file's graph, parsed in place with <see cref="ProtoReader"/>: nodes (operator,
/// inputs, outputs), initializers (name, shape, element type and where their bytes are) and graph outputs. Tensor
/// bytes are not loaded until asked for, so a large model costs its node list, not its weights.
/// </summary>
internal sealed partial class OnnxModelFile
{
    private readonly string _path;

    private OnnxModelFile(string path) => _path = path;

    public List<Node> Nodes { get; } = [];

    public Dictionary<string, Initializer> Initializers { get; } = new(StringComparer.Ordinal);

    public List<string> Outputs { get; } = [];

    /// <summary>Where the graph message lies in the file (for rewriting it with more outputs).</summary>
    public (long Start, long Length, long KeyStart) Graph { get; private set; }

    public sealed record Node(string Name, string OpType, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs)
    {
        /// <summary>The node's integer attributes (K, N, bits, block_size of MatMulNBits, ...).</summary>
        public IReadOnlyDictionary<string, long> IntAttributes { get; init; } = new Dictionary<string, long>();

        /// <summary>The node's float attributes (epsilon of a norm, alpha, ...).</summary>
        public IReadOnlyDictionary<string, float> FloatAttributes { get; init; } = new Dictionary<string, float>();

        /// <summary>A Constant node's value when it is a small float32/float16 tensor (a scalar such as a norm's epsilon); null otherwise.</summary>
        public float[]? ConstantValues { get; init; }

        /// <summary>Where the node's field (key, length and message) lies in the file, for rewriting it.</summary>
        public (long Start, long End) Span { get; init; }
    }

    /// <summary>An initializer: its element type (ONNX TensorProto.DataType: 1 float, 10 float16, 16 bfloat16) and where its data is.</summary>
    public sealed record Initializer(string Name, IReadOnlyList<long> Dims, int DataType, long RawOffset, long RawLength, string? ExternalFile, long ExternalOffset)
    {
        public long ElementCount => Dims.Aggregate(1L, (a, b) => a * b);

        /// <summary>Bytes of the values: elements × the element type's size (uint8/int8/bool 1, 16-bit 2, 32-bit 4, 64-bit 8).</summary>
        public long ByteCount => ElementCount * DataType switch
        {
            2 or 3 or 9 => 1,
            4 or 5 or 10 or 16 => 2,
            7 or 11 or 13 => 8,
            _ => 4,
        };
    }

    public static OnnxModelFile Read(string path)
    {
        var file = new OnnxModelFile(path);
        using var stream = ModelFile.OpenRead(path, ModelFile.MaxGraphBytes);
        try
        {
            var model = new ProtoReader(stream, 0, stream.Length, "ModelProto");
            for (var keyStart = model.Position; model.Next(out var field, out var wire); keyStart = model.Position)
            {
                if (field != 7 || wire != ProtoReader.LengthDelimited)
                {
                    model.Skip(wire);
                    continue;
                }

                var graph = model.ReadMessage("GraphProto"); // ModelProto.graph
                file.Graph = (graph.Position, model.Position - graph.Position, keyStart);
                file.ReadGraph(graph);
            }
        }
        catch (InvalidDataException e)
        {
            throw new ModelFormatException($"'{path}' is not a readable ONNX model: {e.Message}", path, e);
        }

        return file;
    }

    /// <summary>
    /// What the weights are stored as: "int4"/"int8" (or both, "int4+int8") when MatMulNBits nodes hold quantized
    /// weights, otherwise the element type of the largest initializer ("float32", "float16", "bfloat16").
    /// </summary>
    public string WeightType()
    {
        var bits = Nodes.Where(n => n.OpType == "MatMulNBits").Select(n => n.IntAttributes.GetValueOrDefault("bits", 4)).Distinct().Order().ToList();
        if (bits.Count > 0) return string.Join("+", bits.Select(b => $"int{b}"));
        var largest = Initializers.Values.MaxBy(i => i.ElementCount);
        return largest?.DataType switch
        {
            null => "none",
            1 => "float32",
            10 => "float16",
            16 => "bfloat16",
            2 => "uint8",
            3 => "int8",
            var other => $"ONNX type {other}",
        };
    }

    /// <summary>
    /// Whether each layer's attention is one <c>com.microsoft.GroupQueryAttention</c> node that takes its past key/value
    /// straight from the graph inputs and writes its present straight to the graph outputs, so one buffer can be bound
    /// as both (the operator then appends in place). <paramref name="pastNames"/> and <paramref name="presentNames"/> are
    /// aligned key, value pairs per layer.
    /// </summary>
    public bool AttentionSharesCacheBuffer(IReadOnlyList<string> pastNames, IReadOnlyList<string> presentNames)
    {
        var gqa = Nodes.Where(n => n.OpType == "GroupQueryAttention").ToList();
        if (gqa.Count == 0 || gqa.Count * 2 != pastNames.Count) return false;
        var pairs = new HashSet<(string, string, string, string)>();
        for (var i = 0; i + 1 < pastNames.Count; i += 2) pairs.Add((pastNames[i], pastNames[i + 1], presentNames[i], presentNames[i + 1]));
        return gqa.All(n => n.Inputs.Count > 4 && n.Outputs.Count > 2 && pairs.Contains((n.Inputs[3], n.Inputs[4], n.Outputs[1], n.Outputs[2])));
    }

    /// <summary>
    /// Parameters an initializer holds: its elements, except a MatMulNBits weight (K × N packed into bytes) and its
    /// scales and zero points (quantization overhead, not parameters: 0).
    /// </summary>
    public long ParameterCount(Initializer init)
    {
        _quantized ??= QuantizedInitializers();
        return _quantized.TryGetValue(init.Name, out var count) ? count : init.ElementCount;
    }

    private Dictionary<string, long>? _quantized;

    private Dictionary<string, long> QuantizedInitializers()
    {
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var node in Nodes.Where(n => n.OpType == "MatMulNBits" && n.Inputs.Count >= 3))
        {
            result[node.Inputs[1]] = node.IntAttributes.GetValueOrDefault("K") * node.IntAttributes.GetValueOrDefault("N");
            result[node.Inputs[2]] = 0;
            if (node.Inputs.Count > 3 && node.Inputs[3].Length > 0) result[node.Inputs[3]] = 0;
        }

        return result;
    }

    /// <summary>The values of a float32, float16 or bfloat16 initializer as floats.</summary>
    public float[] ReadFloats(Initializer init)
    {
        var count = checked((int)init.ElementCount);
        var bytesPer = init.DataType == 1 ? 4 : init.DataType is 10 or 16 ? 2 : throw new ModelFormatException(
            $"Initializer '{init.Name}' has ONNX element type {init.DataType}; only float32, float16 and bfloat16 can be read.", _path);
        var bytes = ReadRaw(init, count * bytesPer);
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = init.DataType switch
            {
                1 => BitConverter.ToSingle(bytes, i * 4),
                10 => (float)BitConverter.ToHalf(bytes, i * 2),
                _ => BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(bytes, i * 2) << 16),
            };
        }

        return values;
    }

    /// <summary>The bytes of a uint8 initializer (packed quantized weights, zero points).</summary>
    public byte[] ReadBytes(Initializer init) => init.DataType == 2
        ? ReadRaw(init, checked((int)init.ElementCount))
        : throw new ModelFormatException($"Initializer '{init.Name}' has ONNX element type {init.DataType}, not uint8.", _path);

    private byte[] ReadRaw(Initializer init, int length)
    {
        var bytes = new byte[length];
        var source = init.ExternalFile is { } external ? Path.Combine(Path.GetDirectoryName(_path)!, external) : _path;
        var offset = init.ExternalFile is null ? init.RawOffset : init.ExternalOffset;
        if (init.ExternalFile is null && init.RawLength != bytes.Length)
        {
            throw new ModelFormatException($"Initializer '{init.Name}' keeps its values outside raw_data, which this reader does not handle.", _path);
        }

        using var stream = ModelFile.OpenRead(source, init.ExternalFile is null ? ModelFile.MaxGraphBytes : ModelFile.Unlimited);
        stream.Position = offset;
        stream.ReadExactly(bytes);
        return bytes;
    }

    private void ReadGraph(ProtoReader graph)
    {
        for (var keyStart = graph.Position; graph.Next(out var field, out var wire); keyStart = graph.Position)
        {
            switch (field)
            {
                case 1 when wire == ProtoReader.LengthDelimited: Nodes.Add(ReadNode(graph.ReadMessage("NodeProto")) with { Span = (keyStart, graph.Position) }); break;
                case 5 when wire == ProtoReader.LengthDelimited: var init = ReadTensor(graph.ReadMessage("TensorProto")); Initializers[init.Name] = init; break;
                case 12 when wire == ProtoReader.LengthDelimited: Outputs.Add(ReadName(graph.ReadMessage("ValueInfoProto"))); break;
                default: graph.Skip(wire); break;
            }
        }
    }

    // ONNX is proto2, which does not check that strings are UTF-8; names pass through as ONNX Runtime reads them.
    private static string ReadString(ProtoReader reader) => System.Text.Encoding.UTF8.GetString(reader.ReadBytes());

    private static Node ReadNode(ProtoReader node)
    {
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributes = new Dictionary<string, long>(StringComparer.Ordinal);
        var floats = new Dictionary<string, float>(StringComparer.Ordinal);
        float[]? constant = null;
        string name = "", op = "";
        while (node.Next(out var field, out var wire))
        {
            switch (field)
            {
                case 1 when wire == ProtoReader.LengthDelimited: inputs.Add(ReadString(node)); break;
                case 2 when wire == ProtoReader.LengthDelimited: outputs.Add(ReadString(node)); break;
                case 3 when wire == ProtoReader.LengthDelimited: name = ReadString(node); break;
                case 4 when wire == ProtoReader.LengthDelimited: op = ReadString(node); break;
                case 5 when wire == ProtoReader.LengthDelimited:
                    var (attribute, value, single, tensor) = ReadAttribute(node.ReadMessage("AttributeProto"));
                    if (attribute is null) break;
                    if (value is { } i) attributes[attribute] = i;
                    if (single is { } f) floats[attribute] = f;
                    if (tensor is not null && attribute == "value") constant = tensor;
                    break;
                default: node.Skip(wire); break;
            }
        }

        return new Node(name, op, inputs, outputs) { IntAttributes = attributes, FloatAttributes = floats, ConstantValues = op == "Constant" ? constant : null };
    }

    /// <summary>AttributeProto: name 1, f 2 (fixed32), i 3, t 5 (a small float tensor; other kinds are not needed here).</summary>
    private static (string? Name, long? Value, float? Single, float[]? Tensor) ReadAttribute(ProtoReader attribute)
    {
        string? name = null;
        long? value = null;
        float? single = null;
        float[]? tensor = null;
        while (attribute.Next(out var field, out var wire))
        {
            if (field == 1 && wire == ProtoReader.LengthDelimited) name = ReadString(attribute);
            else if (field == 2 && wire == ProtoReader.Fixed32) single = attribute.ReadFloat();
            else if (field == 3 && wire == ProtoReader.VarintType) value = (long)attribute.ReadVarint();
            else if (field == 5 && wire == ProtoReader.LengthDelimited) tensor = ReadSmallFloatTensor(attribute.ReadMessage("TensorProto"));
            else attribute.Skip(wire);
        }

        return (name, value, single, tensor);
    }

    /// <summary>A float32 or float16 TensorProto of at most 64 values from raw_data (9) or float_data (4); null for anything else.</summary>
    private static float[]? ReadSmallFloatTensor(ProtoReader tensor)
    {
        var type = 1;
        byte[]? raw = null;
        var floats = new List<float>();
        while (tensor.Next(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (2, ProtoReader.VarintType): type = (int)tensor.ReadVarint(); break;
                case (9, ProtoReader.LengthDelimited): raw = tensor.ReadBytes(); break;
                case (4, ProtoReader.LengthDelimited):
                    var packed = tensor.ReadMessage("TensorProto.float_data");
                    while (!packed.AtEnd && floats.Count <= 64) floats.Add(packed.ReadFloat());
                    break;
                case (4, ProtoReader.Fixed32): floats.Add(tensor.ReadFloat()); break;
                default: tensor.Skip(wire); break;
            }
        }

        if (raw is not null && raw.Length <= 256)
        {
            if (type == 1) return [.. Enumerable.Range(0, raw.Length / 4).Select(i => BitConverter.ToSingle(raw, i * 4))];
            if (type == 10) return [.. Enumerable.Range(0, raw.Length / 2).Select(i => (float)BitConverter.ToHalf(raw, i * 2))];
        }

        return type == 1 && floats.Count is > 0 and <= 64 ? [.. floats] : null;
    }

    /// <summary>ValueInfoProto's name (field 1; the first, should it repeat); "" when absent.</summary>
    private static string ReadName(ProtoReader valueInfo)
    {
        string? name = null;
        while (valueInfo.Next(out var field, out var wire))
        {
            if (field == 1 && wire == ProtoReader.LengthDelimited && name is null) name = ReadString(valueInfo);
            else valueInfo.Skip(wire);
        }

        return name ?? "";
    }

    private static Initializer ReadTensor(ProtoReader tensor)
    {
        var dims = new List<long>();
        string name = "";
        var type = 0;
        long rawOffset = 0, rawLength = 0, externalOffset = 0;
        string? location = null;
        while (tensor.Next(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, ProtoReader.VarintType): dims.Add((long)tensor.ReadVarint()); break;
                case (1, ProtoReader.LengthDelimited):
                    var packed = tensor.ReadMessage("TensorProto.dims");
                    while (!packed.AtEnd) dims.Add((long)packed.ReadVarint());
                    break;
                case (2, ProtoReader.VarintType): type = (int)tensor.ReadVarint(); break;
                case (8, ProtoReader.LengthDelimited): name = ReadString(tensor); break;
                case (9, ProtoReader.LengthDelimited): (rawOffset, rawLength) = tensor.ReadLengthDelimited(); break;
                case (13, ProtoReader.LengthDelimited):
                    // StringStringEntryProto: key 1, value 2 (location, offset, length).
                    var entry = tensor.ReadMessage("StringStringEntryProto");
                    string? key = null, value = null;
                    while (entry.Next(out var f, out var w))
                    {
                        if (f == 1 && w == ProtoReader.LengthDelimited) key = ReadString(entry);
                        else if (f == 2 && w == ProtoReader.LengthDelimited) value = ReadString(entry);
                        else entry.Skip(w);
                    }

                    if (key == "location") location = value;
                    else if (key == "offset") externalOffset = long.Parse(value ?? "0", System.Globalization.CultureInfo.InvariantCulture);
                    break;
                default: tensor.Skip(wire); break;
            }
        }

        return new Initializer(name, dims, type, rawOffset, rawLength, location, externalOffset);
    }

    /// <summary>
    /// The model's bytes with <paramref name="outputs"/> added as graph outputs of <paramref name="elementType"/> (ONNX
    /// TensorProto.DataType: 1 float, 10 float16; no shape: ONNX Runtime infers it), by rewriting the length of the graph
    /// message and appending the outputs to it — protobuf merges fields.
    /// </summary>
    public byte[] WithExtraOutputs(IReadOnlyList<string> outputs, int elementType = 1)
    {
        var original = ModelFile.ReadAllBytes(_path, ModelFile.MaxGraphBytes);
        var extra = new MemoryStream();
        foreach (var name in outputs)
        {
            // ValueInfoProto { name = 1; type = 2: TypeProto { tensor_type = 1: { elem_type = 1 (FLOAT) } } }
            var nameBytes = System.Text.Encoding.UTF8.GetBytes(name);
            var tensorType = new byte[] { 0x08, (byte)elementType };
            var typeProto = Concat([0x0a], Varint((ulong)tensorType.Length), tensorType);
            var valueInfo = Concat([0x0a], Varint((ulong)nameBytes.Length), nameBytes, [0x12], Varint((ulong)typeProto.Length), typeProto);
            extra.Write(Concat([0x62], Varint((ulong)valueInfo.Length), valueInfo)); // GraphProto.output = 12, wire 2 → 0x62
        }

        var (start, length, keyStart) = Graph;
        var newLength = (ulong)(length + extra.Length);
        return Concat(original.AsSpan(0, (int)keyStart).ToArray(), [0x3a], Varint(newLength), // ModelProto.graph = 7, wire 2 → 0x3a
            original.AsSpan((int)start, (int)length).ToArray(), extra.ToArray(), original.AsSpan((int)(start + length)).ToArray());
    }

    private static byte[] Varint(ulong value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            bytes.Add(value != 0 ? (byte)(b | 0x80) : b);
        }
        while (value != 0);
        return [.. bytes];
    }

    private static byte[] Concat(params byte[][] parts)
    {
        var result = new byte[parts.Sum(p => p.Length)];
        var at = 0;
        foreach (var part in parts)
        {
            part.CopyTo(result, at);
            at += part.Length;
        }

        return result;
    }
}
