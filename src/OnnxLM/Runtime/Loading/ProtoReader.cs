using System.Text;

namespace OnnxLM;

/// <summary>
/// Reads protobuf's wire format, field by field, over one message: a window of a stream (an ONNX graph, read in place
/// without loading its weights) or of a byte array (a SentencePiece <c>.model</c>). The one reader behind
/// <see cref="OnnxModelFile"/> and <see cref="Tokenization.SentencePieceModelFile"/>.
/// </summary>
/// <remarks>
/// Anything malformed is an <see cref="InvalidDataException"/> whose message names the message being read, what was
/// wrong and the byte offset: a varint longer than 10 bytes, input that ends inside a varint or a fixed-size field, a
/// length-delimited field that runs past the end of its message, field number 0, and the group wire types (3 and 4,
/// deprecated and never written by ONNX or SentencePiece) or any other unknown wire type. Callers turn it into a
/// <see cref="ModelFormatException"/> that names the file. Readers of nested messages share the stream; each keeps its
/// own position, so a parent reads on correctly after a child.
/// </remarks>
internal sealed class ProtoReader
{
    /// <summary>Wire type 0: a varint (int32, int64, uint, bool, enum).</summary>
    public const int VarintType = 0;

    /// <summary>Wire type 1: 8 little-endian bytes (fixed64, sfixed64, double).</summary>
    public const int Fixed64 = 1;

    /// <summary>Wire type 2: a varint length, then that many bytes (string, bytes, embedded message, packed repeated).</summary>
    public const int LengthDelimited = 2;

    /// <summary>Wire type 5: 4 little-endian bytes (fixed32, sfixed32, float).</summary>
    public const int Fixed32 = 5;

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private readonly Stream _stream;
    private readonly long _end;
    private long _position;

    /// <summary>A reader over a whole byte array holding the message <paramref name="message"/>.</summary>
    public ProtoReader(byte[] data, string message)
        : this(new MemoryStream(data, writable: false), 0, data.Length, message)
    {
    }

    /// <summary>A reader over <paramref name="length"/> bytes of a seekable stream from <paramref name="start"/>.</summary>
    public ProtoReader(Stream stream, long start, long length, string message)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _stream = stream;
        _position = start;
        _end = start + length;
        Message = message;
    }

    /// <summary>The message being read, as errors name it (for example "ModelProto.trainer_spec").</summary>
    public string Message { get; }

    /// <summary>The offset in the stream of the next byte to read.</summary>
    public long Position => _position;

    /// <summary>Whether the whole message has been read.</summary>
    public bool AtEnd => _position >= _end;

    /// <summary>Reads the next field's key; false at the end of the message.</summary>
    public bool Next(out int field, out int wire)
    {
        if (AtEnd)
        {
            field = 0;
            wire = 0;
            return false;
        }

        var key = ReadVarint();
        if (key >> 3 is 0 or > int.MaxValue)
        {
            throw Error($"has an invalid field number {key >> 3}");
        }

        field = (int)(key >> 3);
        wire = (int)(key & 7);
        return true;
    }

    /// <summary>A varint of up to 10 bytes (the 10th byte's bits beyond 64 are dropped, as protobuf's own readers do).</summary>
    public ulong ReadVarint()
    {
        Seek();
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (_position >= _end)
            {
                throw Error("is truncated inside a varint");
            }

            var b = _stream.ReadByte();
            if (b < 0)
            {
                throw Error("is truncated inside a varint");
            }

            _position++;
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }

        throw Error("has a varint longer than 10 bytes");
    }

    /// <summary>A fixed32 field's 4 little-endian bytes.</summary>
    public uint ReadFixed32() => (uint)ReadFixed(4);

    /// <summary>A fixed64 field's 8 little-endian bytes.</summary>
    public ulong ReadFixed64() => ReadFixed(8);

    /// <summary>A float field (fixed32).</summary>
    public float ReadFloat() => BitConverter.Int32BitsToSingle((int)ReadFixed32());

    /// <summary>Where a length-delimited field's bytes are in the stream; the reader moves past them without reading them.</summary>
    public (long Start, long Length) ReadLengthDelimited()
    {
        var length = ReadVarint();
        if (length > (ulong)(_end - _position))
        {
            throw Error($"is truncated: a field of {length} bytes has only {_end - _position} left");
        }

        var start = _position;
        _position += (long)length;
        return (start, (long)length);
    }

    /// <summary>The bytes of a length-delimited field.</summary>
    public byte[] ReadBytes()
    {
        var (start, length) = ReadLengthDelimited();
        if (length > Array.MaxLength)
        {
            throw Error($"has a field of {length} bytes, more than an array holds");
        }

        var bytes = new byte[length];
        _stream.Position = start;
        try
        {
            _stream.ReadExactly(bytes);
        }
        catch (EndOfStreamException)
        {
            throw Error("is truncated inside a length-delimited field");
        }

        return bytes;
    }

    /// <summary>A string field, which must be valid UTF-8.</summary>
    public string ReadString()
    {
        var bytes = ReadBytes();
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"a string in {Message} is not valid UTF-8", e);
        }
    }

    /// <summary>A reader over the embedded message of a length-delimited field, named <paramref name="name"/> in errors.</summary>
    public ProtoReader ReadMessage(string name)
    {
        var (start, length) = ReadLengthDelimited();
        return new ProtoReader(_stream, start, length, name);
    }

    /// <summary>Moves past a field of wire type <paramref name="wire"/> whose key has just been read.</summary>
    public void Skip(int wire)
    {
        switch (wire)
        {
            case VarintType:
                ReadVarint();
                break;
            case Fixed64:
                ReadFixed(8);
                break;
            case LengthDelimited:
                ReadLengthDelimited();
                break;
            case Fixed32:
                ReadFixed(4);
                break;
            default:
                throw Error($"has a field of unsupported wire type {wire}");
        }
    }

    private ulong ReadFixed(int size)
    {
        if (_end - _position < size)
        {
            throw Error($"is truncated inside a {size * 8}-bit field");
        }

        Seek();
        Span<byte> bytes = stackalloc byte[8];
        if (_stream.ReadAtLeast(bytes[..size], size, throwOnEndOfStream: false) < size)
        {
            throw Error($"is truncated inside a {size * 8}-bit field");
        }

        _position += size;
        ulong value = 0;
        for (var i = size - 1; i >= 0; i--)
        {
            value = (value << 8) | bytes[i];
        }

        return value;
    }

    private void Seek()
    {
        if (_stream.Position != _position)
        {
            _stream.Position = _position;
        }
    }

    private InvalidDataException Error(string what) => new($"{Message} {what} (at byte {_position})");
}
