using System.Runtime.InteropServices;

namespace OnnxLM;

/// <summary>
/// A block of native memory (64-byte aligned, zeroed unless asked not to) that ONNX Runtime reads and writes through tensor views. A safe
/// handle, so a session that is never disposed still frees it when collected.
/// </summary>
internal sealed unsafe class NativeBuffer : SafeHandle
{
    public NativeBuffer(long bytes, bool zeroed = true)
        : base(IntPtr.Zero, ownsHandle: true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Bytes = bytes;
        var pointer = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        if (zeroed) NativeMemory.Clear(pointer, (nuint)Math.Max(bytes, 1));
        SetHandle((IntPtr)pointer);
        if (bytes > 0) GC.AddMemoryPressure(bytes);
    }

    /// <summary>Usable bytes.</summary>
    public long Bytes { get; }

    public byte* Pointer => (byte*)handle;

    public Span<byte> AsSpan(long offset, int length) => new(Pointer + offset, length);

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMemory.AlignedFree((void*)handle);
        if (Bytes > 0) GC.RemoveMemoryPressure(Bytes);
        return true;
    }
}
