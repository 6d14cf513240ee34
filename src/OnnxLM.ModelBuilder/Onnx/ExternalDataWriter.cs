using System.Runtime.InteropServices;

namespace OnnxLM.ModelBuilder.Onnx;

/// <summary>
/// Writes initializer data to the external data file(s) beside a graph as the builder produces each tensor, so a large
/// model is never held in memory whole. Offsets follow what ONNX Runtime needs to memory-map a tensor instead of copying
/// it: a tensor of <see cref="LargeTensorBytes"/> or more starts on a <see cref="LargeAlignment"/> boundary (the Windows
/// allocation granularity, a multiple of every page size), smaller ones on 64 bytes. With a chunk size, a tensor that
/// would take a file past it starts the next file, named <c>name</c>, <c>name_1</c>, <c>name_2</c>, … as transformers.js
/// and Optimum name split data.
/// </summary>
internal sealed class ExternalDataWriter : IDisposable
{
    /// <summary>Tensors this large (ONNX Runtime's own alignment threshold, 1 MiB) are aligned for memory mapping.</summary>
    public const long LargeTensorBytes = 1 << 20;

    /// <summary>64 KiB: the Windows allocation granularity, which mapped views must start on; a multiple of 4 KiB pages.</summary>
    public const long LargeAlignment = 64 << 10;

    private const long SmallAlignment = 64;
    private readonly string _folder;
    private readonly string _fileName;
    private readonly long _chunkBytes;
    private readonly List<string> _files = [];
    private FileStream? _stream;

    public ExternalDataWriter(string folder, string fileName, long chunkBytes = 0)
    {
        (_folder, _fileName, _chunkBytes) = (folder, fileName, chunkBytes);
        Open();
    }

    /// <summary>The bytes of tensor data written so far (padding excluded).</summary>
    public long DataBytes { get; private set; }

    /// <summary>Where one tensor's bytes are: the file name beside the graph, the offset in it and the length.</summary>
    public readonly record struct Location(string File, long Offset, long Length);

    /// <summary>Starts a tensor of <paramref name="length"/> bytes, aligned and in the right file; write it with <see cref="Append"/>.</summary>
    public Location Begin(long length)
    {
        var stream = _stream ?? throw new ObjectDisposedException(nameof(ExternalDataWriter));
        if (_chunkBytes > 0 && stream.Position > 0 && stream.Position + length > _chunkBytes)
        {
            stream.Dispose();
            Open();
            stream = _stream!;
        }

        var alignment = length >= LargeTensorBytes ? LargeAlignment : SmallAlignment;
        var padding = (alignment - stream.Position % alignment) % alignment;
        if (padding > 0) stream.Write(new byte[padding]);
        DataBytes += length;
        return new Location(_files[^1], stream.Position, length);
    }

    /// <summary>Appends bytes of the tensor begun last.</summary>
    public void Append(ReadOnlySpan<byte> data) => (_stream ?? throw new ObjectDisposedException(nameof(ExternalDataWriter))).Write(data);

    /// <summary>Writes one whole tensor.</summary>
    public Location Write(ReadOnlySpan<byte> data)
    {
        var location = Begin(data.Length);
        Append(data);
        return location;
    }

    /// <summary>Writes float32 values as float16, converting a slice at a time.</summary>
    public Location WriteFloat16(ReadOnlySpan<float> values)
    {
        var location = Begin(values.Length * 2L);
        var halves = new Half[Math.Min(values.Length, 1 << 16)];
        for (var start = 0; start < values.Length; start += halves.Length)
        {
            var n = Math.Min(halves.Length, values.Length - start);
            for (var i = 0; i < n; i++) halves[i] = (Half)values[start + i];
            Append(MemoryMarshal.AsBytes(halves.AsSpan(0, n)));
        }

        return location;
    }

    /// <summary>Reads a written tensor back (used when the whole model turns out small enough to keep inline).</summary>
    public byte[] Read(Location location)
    {
        _stream?.Flush();
        using var file = new FileStream(Path.Combine(_folder, location.File), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        file.Position = location.Offset;
        var data = new byte[location.Length];
        file.ReadExactly(data);
        return data;
    }

    /// <summary>Closes the files and deletes them (the weights went inline instead).</summary>
    public void Delete()
    {
        Dispose();
        foreach (var file in _files) File.Delete(Path.Combine(_folder, file));
    }

    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
    }

    private void Open()
    {
        var name = _files.Count == 0 ? _fileName : $"{_fileName}_{_files.Count}";
        _files.Add(name);
        _stream = new FileStream(Path.Combine(_folder, name), FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 20);
    }
}
