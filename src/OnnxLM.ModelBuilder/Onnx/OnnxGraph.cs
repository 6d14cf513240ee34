using System.Globalization;
using System.Runtime.InteropServices;

namespace OnnxLM.ModelBuilder.Onnx;

/// <summary>
/// An ONNX graph under construction, serialized as a ModelProto (IR version 8, ai.onnx opset 17). Standard operators
/// only, so every ONNX Runtime execution provider and ONNX Runtime GenAI can run it, except the one contrib operator
/// quantized weights and fused attention need (com.microsoft MatMulNBits and GroupQueryAttention, which ONNX Runtime's
/// CPU and CUDA providers implement); the com.microsoft opset is imported only when such a node is present.
/// Node outputs get unique names; weights become initializers, inline or in an external data file.
/// </summary>
internal sealed class OnnxGraph
{
    public const int IrVersion = 8;
    public const int Opset = 17;

    /// <summary>ONNX Runtime's contrib operator domain (version 1).</summary>
    public const string MicrosoftDomain = "com.microsoft";

    // TensorProto.DataType values.
    public const int Float = 1;
    public const int UInt8 = 2;
    public const int Int32 = 6;
    public const int Int64 = 7;
    public const int Bool = 9;
    public const int Float16 = 10;

    private readonly List<ProtoMessage> _nodes = [];
    private readonly List<Initializer> _initializers = [];
    private readonly List<ProtoMessage> _inputs = [];
    private readonly List<ProtoMessage> _outputs = [];
    private readonly HashSet<string> _names = [];
    private int _counter;
    private bool _usesMicrosoftDomain;

    private ExternalDataWriter? _spill;

    /// <summary>A graph whose initializers stay in memory until <see cref="Save"/>.</summary>
    public OnnxGraph()
    {
    }

    /// <summary>
    /// A graph whose initializers of 1 KiB or more are written to <paramref name="spill"/> as they are added, so the weights
    /// are never all in memory; <see cref="Inline"/> brings them back when the model turns out small.
    /// </summary>
    public OnnxGraph(ExternalDataWriter spill) => _spill = spill;

    public string Name { get; init; } = "decoder";

    /// <summary>An initializer: its bytes in memory, or where they were written in the external data.</summary>
    private sealed record Initializer(string Name, int Type, long[] Dims, byte[]? Data, ExternalDataWriter.Location? External)
    {
        public long Length => Data?.LongLength ?? External!.Value.Length;
    }

    /// <summary>Initializers of this size or more go to external data when there is any.</summary>
    private const int ExternalMinimumBytes = 1024;

    /// <summary>Adds a node and returns the names of its outputs.</summary>
    public string[] Node(string op, string[] inputs, int outputCount = 1, string? name = null, params (string Name, object Value)[] attributes)
    {
        var baseName = name ?? op.ToLowerInvariant();
        var outputs = new string[outputCount];
        for (var i = 0; i < outputCount; i++)
        {
            outputs[i] = Unique($"{baseName}_out{(outputCount > 1 ? i.ToString(CultureInfo.InvariantCulture) : string.Empty)}");
        }

        AddNode(op, inputs, outputs, attributes);
        return outputs;
    }

    /// <summary>Adds a node with one output and returns its name.</summary>
    public string Op(string op, params string[] inputs) => Node(op, inputs)[0];

    /// <summary>Adds a node with one output and attributes.</summary>
    public string Op(string op, string[] inputs, params (string Name, object Value)[] attributes) => Node(op, inputs, 1, null, attributes)[0];

    /// <summary>Adds a node whose outputs have fixed names (graph outputs).</summary>
    public void AddNode(string op, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes) =>
        AddNode(null, op, inputs, outputs, attributes);

    /// <summary>Adds a com.microsoft contrib operator node with one output (a fresh name when null) and returns its name.</summary>
    public string MicrosoftOp(string op, string[] inputs, string? output, params (string Name, object Value)[] attributes) =>
        MicrosoftNode(op, inputs, [output], attributes)[0];

    /// <summary>
    /// Adds a com.microsoft contrib operator node and returns its output names: the given ones (graph outputs), a fresh
    /// name for each null.
    /// </summary>
    public string[] MicrosoftNode(string op, string[] inputs, string?[] outputs, params (string Name, object Value)[] attributes)
    {
        var names = new string[outputs.Length];
        for (var i = 0; i < outputs.Length; i++) names[i] = outputs[i] ?? Unique(op.ToLowerInvariant() + (outputs.Length > 1 ? $"_out{i}" : "_out"));
        AddNode(MicrosoftDomain, op, inputs, names, attributes);
        return names;
    }

    private void AddNode(string? domain, string op, string[] inputs, string[] outputs, (string Name, object Value)[] attributes)
    {
        var node = new ProtoMessage();
        foreach (var input in inputs) node.String(1, input);
        foreach (var output in outputs) node.String(2, output);
        node.String(3, Unique(op + "_node"));
        node.String(4, op);
        if (domain is not null)
        {
            node.String(7, domain);
            _usesMicrosoftDomain |= domain == MicrosoftDomain;
        }
        foreach (var (attrName, value) in attributes)
        {
            var attribute = new ProtoMessage().String(1, attrName);
            switch (value)
            {
                case int i: attribute.Int(3, i).Int(20, 2); break;
                case long l: attribute.Int(3, l).Int(20, 2); break;
                case float f: attribute.Float(2, f).Int(20, 1); break;
                case long[] ints:
                    foreach (var v in ints) attribute.Int(8, v);
                    attribute.Int(20, 7);
                    break;
                case ProtoMessage tensor: attribute.Message(5, tensor).Int(20, 4); break;
                default: throw new ArgumentException($"Unsupported attribute type {value.GetType()}");
            }

            node.Message(5, attribute);
        }

        _nodes.Add(node);
    }

    /// <summary>A float32 or float16 weight (stored little-endian).</summary>
    public string Weight(string name, ReadOnlySpan<float> values, long[] dims, bool asFloat16)
    {
        var type = asFloat16 ? Float16 : Float;
        if (_spill is not null && values.Length * (asFloat16 ? 2L : 4L) >= ExternalMinimumBytes)
        {
            var location = asFloat16 ? _spill.WriteFloat16(values) : _spill.Write(MemoryMarshal.AsBytes(values));
            _initializers.Add(new Initializer(Claim(name), type, dims, null, location));
            return name;
        }

        byte[] data;
        if (asFloat16)
        {
            var halves = new Half[values.Length];
            for (var i = 0; i < values.Length; i++) halves[i] = (Half)values[i];
            data = MemoryMarshal.AsBytes(halves.AsSpan()).ToArray();
        }
        else
        {
            data = MemoryMarshal.AsBytes(values).ToArray();
        }

        _initializers.Add(new Initializer(Claim(name), type, dims, data, null));
        return name;
    }

    /// <summary>A uint8 weight (packed quantized blocks, packed zero points).</summary>
    public string Bytes(string name, byte[] data, long[] dims)
    {
        var location = _spill is not null && data.Length >= ExternalMinimumBytes ? _spill.Write(data) : (ExternalDataWriter.Location?)null;
        _initializers.Add(new Initializer(Claim(name), UInt8, dims, location is null ? data : null, location));
        return name;
    }

    /// <summary>An int64 constant (shapes, axes, indices).</summary>
    public string Ints(string name, params long[] values) => IntsShaped(name, [values.Length], values);

    /// <summary>An int64 constant with an explicit shape (rank 0 for scalars).</summary>
    public string IntsShaped(string name, long[] dims, long[] values)
    {
        _initializers.Add(new Initializer(Unique(name), Int64, dims, MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), null));
        return _initializers[^1].Name;
    }

    /// <summary>A float32 scalar constant.</summary>
    public string Scalar(string name, float value)
    {
        _initializers.Add(new Initializer(Unique(name), Float, [], BitConverter.GetBytes(value), null));
        return _initializers[^1].Name;
    }

    public void Input(string name, int elementType, params object[] dims) => _inputs.Add(ValueInfo(Claim(name), elementType, dims));

    /// <summary>
    /// An int64 scalar graph input with a default: an initializer of the same name, which ONNX Runtime treats as an
    /// overridable initializer (IR 4 and later). A caller that does not feed it gets <paramref name="value"/>, and ONNX
    /// Runtime does not list it among the inputs a run must feed, so runtimes that know nothing of it run the graph unchanged.
    /// </summary>
    public void InputWithDefault(string name, long value)
    {
        _inputs.Add(ValueInfo(Claim(name), Int64, []));
        _initializers.Add(new Initializer(name, Int64, [], BitConverter.GetBytes(value), null));
    }

    public void Output(string name, int elementType, params object[] dims) => _outputs.Add(ValueInfo(name, elementType, dims));

    /// <summary>
    /// Writes the model. Initializers of 1 KiB or more go to <paramref name="externalDataFile"/> (beside the graph) when
    /// given; with <paramref name="chunkBytes"/> above 0, a tensor that would take a file past that size starts the next file,
    /// named as transformers.js and Optimum name split data: <c>name</c>, <c>name_1</c>, <c>name_2</c>, …
    /// A graph built with a spill writer references the data already written there and ignores both arguments.
    /// </summary>
    public void Save(string path, string? externalDataFile, IReadOnlyDictionary<string, string> metadata, long chunkBytes = 0)
    {
        var folder = Path.GetDirectoryName(path)!;
        if (_spill is null && externalDataFile is not null)
        {
            _spill = new ExternalDataWriter(folder, externalDataFile, chunkBytes);
            for (var i = 0; i < _initializers.Count; i++)
            {
                if (_initializers[i] is { Data: { Length: >= ExternalMinimumBytes } data } init)
                {
                    _initializers[i] = init with { Data = null, External = _spill.Write(data) };
                }
            }
        }

        _spill?.Dispose();
        var graph = new ProtoMessage();
        foreach (var node in _nodes) graph.Message(1, node);
        graph.String(2, Name);
        foreach (var (name, type, dims, data, external) in _initializers)
        {
            var tensor = new ProtoMessage();
            foreach (var d in dims) tensor.Int(1, d);
            tensor.Int(2, type).String(8, name);
            if (external is { } at)
            {
                tensor.Message(13, new ProtoMessage().String(1, "location").String(2, at.File));
                tensor.Message(13, new ProtoMessage().String(1, "offset").String(2, at.Offset.ToString(CultureInfo.InvariantCulture)));
                tensor.Message(13, new ProtoMessage().String(1, "length").String(2, at.Length.ToString(CultureInfo.InvariantCulture)));
                tensor.Int(14, 1);
            }
            else
            {
                tensor.Bytes(9, data!);
            }

            graph.Message(5, tensor);
        }

        foreach (var input in _inputs) graph.Message(11, input);
        foreach (var output in _outputs) graph.Message(12, output);

        var model = new ProtoMessage()
            .Int(1, IrVersion)
            .String(2, "OnnxLM.ModelBuilder")
            .String(3, typeof(OnnxGraph).Assembly.GetName().Version?.ToString() ?? "0")
            .Message(7, graph)
            .Message(8, new ProtoMessage().String(1, string.Empty).Int(2, Opset));
        if (_usesMicrosoftDomain)
        {
            model.Message(8, new ProtoMessage().String(1, MicrosoftDomain).Int(2, 1));
        }

        foreach (var (key, value) in metadata)
        {
            model.Message(14, new ProtoMessage().String(1, key).String(2, value));
        }

        using var file = File.Create(path);
        model.WriteTo(file);
    }

    /// <summary>Total bytes of all initializers, in memory or written to external data.</summary>
    public long WeightBytes => _initializers.Sum(i => i.Length);

    /// <summary>
    /// At least how many bytes the file takes beside the initializers' data: nodes, inputs and outputs, each tensor's
    /// name and shape, and a margin for the model's header and metadata.
    /// </summary>
    public long StructureBytes =>
        _nodes.Sum(n => n.Length + 8L) + _inputs.Concat(_outputs).Sum(v => v.Length + 8L)
        + _initializers.Sum(i => i.Name.Length + 11L * i.Dims.Length + 32) + 4096;

    /// <summary>Reads every initializer written to external data back into memory and deletes the data files.</summary>
    public void Inline()
    {
        if (_spill is null) return;
        for (var i = 0; i < _initializers.Count; i++)
        {
            if (_initializers[i] is { External: { } at } init)
            {
                _initializers[i] = init with { Data = _spill.Read(at), External = null };
            }
        }

        _spill.Delete();
        _spill = null;
    }

    private static ProtoMessage ValueInfo(string name, int elementType, object[] dims)
    {
        var shape = new ProtoMessage();
        foreach (var dim in dims)
        {
            shape.Message(1, dim switch
            {
                string symbol => new ProtoMessage().String(2, symbol),
                int value => new ProtoMessage().Int(1, value),
                long value => new ProtoMessage().Int(1, value),
                _ => throw new ArgumentException($"Unsupported dimension {dim}"),
            });
        }

        var tensorType = new ProtoMessage().Int(1, elementType).Message(2, shape);
        return new ProtoMessage().String(1, name).Message(2, new ProtoMessage().Message(1, tensorType));
    }

    private string Claim(string name) =>
        _names.Add(name) ? name : throw new InvalidOperationException($"Duplicate graph name '{name}'.");

    private string Unique(string name)
    {
        var candidate = name;
        while (!_names.Add(candidate))
        {
            candidate = $"{name}_{++_counter}";
        }

        return candidate;
    }
}
