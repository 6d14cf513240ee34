using Google.Protobuf;

namespace OnnxLM.ModelBuilder.Onnx;

/// <summary>
/// A protobuf message being written field by field (field numbers from onnx.proto), on top of
/// Google.Protobuf's wire-format writer. Nested messages are written to their own buffer first so their
/// length prefix is known.
/// </summary>
internal sealed class ProtoMessage
{
    private readonly MemoryStream _buffer = new();
    private readonly CodedOutputStream _output;

    public ProtoMessage() => _output = new CodedOutputStream(_buffer, leaveOpen: true);

    public ProtoMessage Int(int field, long value)
    {
        _output.WriteTag(field, WireFormat.WireType.Varint);
        _output.WriteInt64(value);
        return this;
    }

    public ProtoMessage Float(int field, float value)
    {
        _output.WriteTag(field, WireFormat.WireType.Fixed32);
        _output.WriteFloat(value);
        return this;
    }

    public ProtoMessage String(int field, string value)
    {
        _output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _output.WriteString(value);
        return this;
    }

    public ProtoMessage Bytes(int field, byte[] value)
    {
        _output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _output.WriteBytes(UnsafeByteOperations.UnsafeWrap(value));
        return this;
    }

    public ProtoMessage Message(int field, ProtoMessage message) => Bytes(field, message.ToArray());

    /// <summary>The bytes written so far.</summary>
    public long Length
    {
        get
        {
            _output.Flush();
            return _buffer.Length;
        }
    }

    public byte[] ToArray()
    {
        _output.Flush();
        return _buffer.ToArray();
    }

    public void WriteTo(Stream stream)
    {
        _output.Flush();
        _buffer.Position = 0;
        _buffer.CopyTo(stream);
    }
}
