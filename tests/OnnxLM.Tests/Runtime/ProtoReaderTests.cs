using System.Text;
using OnnxLM.Tokenization;

namespace OnnxLM.Tests;

/// <summary>
/// The protobuf wire reader behind OnnxModelFile and SentencePieceModelFile, on bytes written out by hand from the
/// protobuf encoding guide (https://protobuf.dev/programming-guides/encoding/), not by another encoder of ours.
/// </summary>
public sealed class ProtoReaderTests
{
    [Theory]
    [InlineData(new byte[] { 0x00 }, 0UL)]
    [InlineData(new byte[] { 0x01 }, 1UL)]
    [InlineData(new byte[] { 0x7F }, 127UL)]
    [InlineData(new byte[] { 0x96, 0x01 }, 150UL)] // the guide's example
    [InlineData(new byte[] { 0xAC, 0x02 }, 300UL)]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x07 }, (ulong)int.MaxValue)]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, ulong.MaxValue)] // int64 -1: 10 bytes
    [InlineData(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }, 1UL << 63)]
    [InlineData(new byte[] { 0x81, 0x00 }, 1UL)] // a redundant zero continuation is still a varint
    public void ReadsVarintsOfOneToTenBytes(byte[] bytes, ulong expected)
    {
        var reader = new ProtoReader(bytes, "Test");
        Assert.Equal(expected, reader.ReadVarint());
        Assert.True(reader.AtEnd);
        Assert.Equal(bytes.Length, reader.Position);
    }

    [Fact]
    public void AVarintLongerThanTenBytesIsInvalidData()
    {
        byte[] bytes = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        var e = Assert.Throws<InvalidDataException>(() => new ProtoReader(bytes, "Test").ReadVarint());
        Assert.Equal("Test has a varint longer than 10 bytes (at byte 10)", e.Message);
    }

    [Theory]
    [InlineData(new byte[] { 0x80 })]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF })]
    public void InputEndingInsideAVarintIsInvalidData(byte[] bytes)
    {
        var e = Assert.Throws<InvalidDataException>(() => new ProtoReader(bytes, "Test").ReadVarint());
        Assert.Equal($"Test is truncated inside a varint (at byte {bytes.Length})", e.Message);
    }

    [Fact]
    public void ReadsLengthDelimitedStringsAndEmbeddedMessages()
    {
        // Field 1 = "testing" (the guide's example), field 3 = an embedded message { field 1 = 150 }, field 2 = 7.
        byte[] bytes = [0x0A, 0x07, .. "testing"u8.ToArray(), 0x1A, 0x03, 0x08, 0x96, 0x01, 0x10, 0x07];
        var reader = new ProtoReader(bytes, "Outer");

        Assert.True(reader.Next(out var field, out var wire));
        Assert.Equal((1, ProtoReader.LengthDelimited), (field, wire));
        Assert.Equal("testing", reader.ReadString());

        Assert.True(reader.Next(out field, out wire));
        Assert.Equal((3, ProtoReader.LengthDelimited), (field, wire));
        var inner = reader.ReadMessage("Inner");
        Assert.Equal("Inner", inner.Message);
        Assert.Equal(11, inner.Position);
        Assert.True(inner.Next(out field, out wire));
        Assert.Equal((1, ProtoReader.VarintType), (field, wire));
        Assert.Equal(150UL, inner.ReadVarint());
        Assert.False(inner.Next(out _, out _));

        // The outer reader goes on after the embedded message, wherever the inner one left the shared stream.
        Assert.True(reader.Next(out field, out wire));
        Assert.Equal((2, ProtoReader.VarintType), (field, wire));
        Assert.Equal(7UL, reader.ReadVarint());
        Assert.False(reader.Next(out _, out _));
    }

    [Fact]
    public void ALengthDelimitedFieldReportsWhereItsBytesAreInTheStream()
    {
        // A window that starts 3 bytes into the stream: positions stay those of the stream.
        byte[] bytes = [0xEE, 0xEE, 0xEE, 0x4A, 0x04, 1, 2, 3, 4, 0xEE];
        var reader = new ProtoReader(new MemoryStream(bytes), 3, 6, "Window");
        Assert.True(reader.Next(out var field, out var wire));
        Assert.Equal((9, ProtoReader.LengthDelimited), (field, wire));
        Assert.Equal((5L, 4L), reader.ReadLengthDelimited());
        Assert.True(reader.AtEnd);
        Assert.Equal(9, reader.Position);
    }

    [Fact]
    public void AFieldLongerThanWhatIsLeftOfItsMessageIsInvalidData()
    {
        // An embedded message of 3 bytes whose string claims 5: the outer message has more bytes, the inner does not.
        byte[] bytes = [0x0A, 0x03, 0x0A, 0x05, (byte)'a', 0x00, 0x00, 0x00, 0x00];
        var inner = new ProtoReader(bytes, "Outer").ReadMessageAfterKey("Inner");
        Assert.True(inner.Next(out _, out _));
        var e = Assert.Throws<InvalidDataException>(() => inner.ReadString());
        Assert.Equal("Inner is truncated: a field of 5 bytes has only 1 left (at byte 4)", e.Message);
    }

    [Fact]
    public void ReadsFixed32AndFixed64LittleEndian()
    {
        // Field 2 = 1.5f (fixed32), field 3 = 0x0102030405060708 (fixed64), field 4 = 0xDEADBEEF (fixed32).
        byte[] bytes = [0x15, 0x00, 0x00, 0xC0, 0x3F, 0x19, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x25, 0xEF, 0xBE, 0xAD, 0xDE];
        var reader = new ProtoReader(bytes, "Test");
        Assert.True(reader.Next(out var field, out var wire));
        Assert.Equal((2, ProtoReader.Fixed32), (field, wire));
        Assert.Equal(1.5f, reader.ReadFloat());
        Assert.True(reader.Next(out field, out wire));
        Assert.Equal((3, ProtoReader.Fixed64), (field, wire));
        Assert.Equal(0x0102030405060708UL, reader.ReadFixed64());
        Assert.True(reader.Next(out field, out wire));
        Assert.Equal((4, ProtoReader.Fixed32), (field, wire));
        Assert.Equal(0xDEADBEEFu, reader.ReadFixed32());
        Assert.True(reader.AtEnd);
    }

    [Theory]
    [InlineData(new byte[] { 0x15, 0x00, 0x00, 0xC0 }, 32)]
    [InlineData(new byte[] { 0x19, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02 }, 64)]
    public void InputEndingInsideAFixedFieldIsInvalidData(byte[] bytes, int bits)
    {
        var reader = new ProtoReader(bytes, "Test");
        Assert.True(reader.Next(out _, out var wire));
        var e = Assert.Throws<InvalidDataException>(() => reader.Skip(wire));
        Assert.Equal($"Test is truncated inside a {bits}-bit field (at byte 1)", e.Message);
    }

    [Fact]
    public void SkipsFieldsOfEveryWireTypeItDoesNotAskFor()
    {
        byte[] bytes =
        [
            0xA0, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, // field 100, varint, 10 bytes
            0x39, 1, 2, 3, 4, 5, 6, 7, 8, // field 7, fixed64
            0x42, 0x03, 0x08, 0x96, 0x01, // field 8, length-delimited
            0x6D, 1, 2, 3, 4, // field 13, fixed32
            0x48, 0x2A, // field 9 = 42, the one wanted
        ];
        var reader = new ProtoReader(bytes, "Test");
        ulong? wanted = null;
        var seen = new List<int>();
        while (reader.Next(out var field, out var wire))
        {
            seen.Add(field);
            if (field == 9 && wire == ProtoReader.VarintType) wanted = reader.ReadVarint();
            else reader.Skip(wire);
        }

        Assert.Equal(new[] { 100, 7, 8, 13, 9 }, seen);
        Assert.Equal(42UL, wanted);
    }

    [Theory]
    [InlineData(0x0B, 3)] // field 1, start group
    [InlineData(0x0C, 4)] // field 1, end group
    [InlineData(0x0E, 6)]
    [InlineData(0x0F, 7)]
    public void GroupsAndUnknownWireTypesAreInvalidData(byte key, int wire)
    {
        var reader = new ProtoReader([key, 0x00], "Test");
        Assert.True(reader.Next(out _, out var read));
        Assert.Equal(wire, read);
        var e = Assert.Throws<InvalidDataException>(() => reader.Skip(read));
        Assert.Equal($"Test has a field of unsupported wire type {wire} (at byte 1)", e.Message);
    }

    [Fact]
    public void FieldNumberZeroIsInvalidData()
    {
        var e = Assert.Throws<InvalidDataException>(() => new ProtoReader([0x00, 0x01], "Test").Next(out _, out _));
        Assert.Equal("Test has an invalid field number 0 (at byte 1)", e.Message);
    }

    [Fact]
    public void AStringThatIsNotUtf8IsInvalidData()
    {
        var reader = new ProtoReader([0x0A, 0x02, 0xC3, 0x28], "Test");
        Assert.True(reader.Next(out _, out _));
        var e = Assert.Throws<InvalidDataException>(() => reader.ReadString());
        Assert.Equal("a string in Test is not valid UTF-8", e.Message);
    }

    [Fact]
    public void ATruncatedSentencePieceModelIsAModelFormatErrorNamingTheFile()
    {
        var file = TokenizerFamilies.Committed("spm-unigram", "test_model.model");
        var bytes = File.ReadAllBytes(file);
        Assert.True(SentencePieceModelFile.Parse(bytes, file).Pieces.Count > 0);

        var e = Assert.Throws<ModelFormatException>(() => SentencePieceModelFile.Parse(bytes[..(bytes.Length / 2)], "half.model"));
        Assert.StartsWith("The SentencePiece model 'half.model' is malformed: ModelProto is truncated", e.Message);
        Assert.IsType<InvalidDataException>(e.InnerException);
        Assert.Equal("half.model", e.Path);
    }

    [Fact]
    public void ATruncatedOnnxGraphIsAModelFormatErrorNamingTheFile()
    {
        var source = Path.Combine(TestPaths.RepoModel("kjv-tiny"), "model.onnx");
        var full = OnnxModelFile.Read(source);
        Assert.NotEmpty(full.Nodes);
        Assert.NotEmpty(full.Initializers);

        var half = Path.Combine(Directory.CreateTempSubdirectory("onnxlm-proto-").FullName, "model.onnx");
        try
        {
            var bytes = File.ReadAllBytes(source);
            File.WriteAllBytes(half, bytes[..(bytes.Length / 2)]);
            var e = Assert.Throws<ModelFormatException>(() => OnnxModelFile.Read(half));
            Assert.StartsWith($"'{half}' is not a readable ONNX model: ModelProto is truncated", e.Message);
            Assert.IsType<InvalidDataException>(e.InnerException);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(half)!, recursive: true);
        }
    }
}

internal static class ProtoReaderTestExtensions
{
    /// <summary>Reads the key of a length-delimited field and returns a reader over its embedded message.</summary>
    public static ProtoReader ReadMessageAfterKey(this ProtoReader reader, string name)
    {
        Assert.True(reader.Next(out _, out var wire));
        Assert.Equal(ProtoReader.LengthDelimited, wire);
        return reader.ReadMessage(name);
    }
}
