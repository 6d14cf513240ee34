using System.Runtime.InteropServices;
using System.Text;

namespace OnnxLM;

/// <summary>A graph input or output name encoded once as zero-terminated UTF-8 in native memory, for <see cref="OrtNative"/>.</summary>
internal sealed unsafe class NativeName : IDisposable
{
    public NativeName(string name)
    {
        Name = name;
        var bytes = Encoding.UTF8.GetBytes(name);
        Pointer = (byte*)NativeMemory.Alloc((nuint)bytes.Length + 1);
        bytes.CopyTo(new Span<byte>(Pointer, bytes.Length));
        Pointer[bytes.Length] = 0;
    }

    public string Name { get; }

    public byte* Pointer { get; private set; }

    public void Dispose()
    {
        NativeMemory.Free(Pointer);
        Pointer = null;
    }
}
