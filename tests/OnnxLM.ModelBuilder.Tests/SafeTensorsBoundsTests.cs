using System.Buffers.Binary;
using System.Text;
using OnnxLM.ModelBuilder.SafeTensors;

namespace OnnxLM.ModelBuilder.Tests;

/// <summary>A safetensors header that points outside its file is a ModelFormatException naming the tensor, not a read past the end.</summary>
public sealed class SafeTensorsBoundsTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("onnxlm-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private void Write(string header, int dataBytes)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(Path.Combine(_folder, "model.safetensors"), bytes);
    }

    [Theory]
    [InlineData("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 1600]}}", 16)]
    [InlineData("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 4]}}", 16)]
    [InlineData("{\"w\": {\"dtype\": \"F32\", \"shape\": [-4], \"data_offsets\": [0, 16]}}", 16)]
    public void OffsetsOutsideTheFileAreRefused(string header, int dataBytes)
    {
        Write(header, dataBytes);
        var ex = Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(_folder));
        Assert.Contains("tensor 'w'", ex.Message);
    }

    [Fact]
    public void AValidFileReads()
    {
        Write("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8);
        Assert.Equal([0f, 0f], SafeTensorsFile.Open(_folder).Read("w", 2));
    }
}
