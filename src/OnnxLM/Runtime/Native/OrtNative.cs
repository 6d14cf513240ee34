using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>
/// The few ONNX Runtime C API calls the decode step makes, called directly through the API's function table so that
/// a step allocates no managed memory: tensor views over buffers the session owns, and binding them by names encoded
/// once. The managed API allocates a wrapper object and a UTF-8 name for each of these calls (about 110 bytes per
/// tensor, 3–6 KB per token). The table is ONNX Runtime's stable C ABI: entries are only ever appended, so the
/// indices below (from <c>onnxruntime_c_api.h</c>) hold for every runtime version that has them.
/// </summary>
internal static unsafe class OrtNative
{
    // Positions in the OrtApi struct.
    private const int GetErrorMessageIndex = 2;
    private const int CreateTensorWithDataAsOrtValueIndex = 49;
    private const int ReleaseStatusIndex = 93;
    private const int ReleaseValueIndex = 96;
    private const int BindInputIndex = 136;
    private const int BindOutputIndex = 137;

    /// <summary>The API version that introduced every entry used here (IoBinding came with version 2).</summary>
    private const uint ApiVersion = 2;

    private static readonly IntPtr* Api = LoadApi();

    [DllImport("onnxruntime", CallingConvention = CallingConvention.Winapi)]
    private static extern IntPtr* OrtGetApiBase();

    private static IntPtr* LoadApi()
    {
        var getApi = (delegate* unmanaged<uint, IntPtr*>)OrtGetApiBase()[0];
        var api = getApi(ApiVersion);
        return api != null ? api : throw new OnnxLMException($"The ONNX Runtime native library does not offer C API version {ApiVersion}.");
    }

    /// <summary>
    /// A tensor over memory the caller owns (no copy); release it with <see cref="Release"/>. The memory must outlive
    /// every use of the tensor, including bindings that hold it.
    /// </summary>
    private static IntPtr CreateTensor(OrtMemoryInfo memory, void* data, long bytes, ReadOnlySpan<long> shape, TensorElementType type)
    {
        IntPtr value;
        fixed (long* dims = shape)
        {
            var create = (delegate* unmanaged<IntPtr, void*, nuint, long*, nuint, int, IntPtr*, IntPtr>)Api[CreateTensorWithDataAsOrtValueIndex];
            Check(create(memory.DangerousGetHandle(), data, (nuint)bytes, dims, (nuint)shape.Length, (int)type, &value));
        }

        return value;
    }

    /// <summary>Releases a value from <see cref="CreateTensor"/> (a binding that holds it keeps its own reference).</summary>
    private static void Release(IntPtr value)
    {
        if (value != IntPtr.Zero)
        {
            ((delegate* unmanaged<IntPtr, void>)Api[ReleaseValueIndex])(value);
        }
    }

    /// <summary>Binds a tensor view over <paramref name="data"/> as the input named <paramref name="name"/>.</summary>
    public static void BindInputView(OrtIoBinding binding, NativeName name, OrtMemoryInfo memory, void* data, long bytes, ReadOnlySpan<long> shape, TensorElementType type) =>
        BindView(BindInputIndex, binding, name, memory, data, bytes, shape, type);

    /// <summary>Binds a tensor view over <paramref name="data"/> as the buffer ONNX Runtime writes the output named <paramref name="name"/> into.</summary>
    public static void BindOutputView(OrtIoBinding binding, NativeName name, OrtMemoryInfo memory, void* data, long bytes, ReadOnlySpan<long> shape, TensorElementType type) =>
        BindView(BindOutputIndex, binding, name, memory, data, bytes, shape, type);

    /// <summary>Creates the view, binds it with the API entry <paramref name="bind"/> (BindInput or BindOutput, same signature), then drops this side's reference.</summary>
    private static void BindView(int bind, OrtIoBinding binding, NativeName name, OrtMemoryInfo memory, void* data, long bytes, ReadOnlySpan<long> shape, TensorElementType type)
    {
        var value = CreateTensor(memory, data, bytes, shape, type);
        try
        {
            Check(((delegate* unmanaged<IntPtr, byte*, IntPtr, IntPtr>)Api[bind])(binding.DangerousGetHandle(), name.Pointer, value));
        }
        finally
        {
            Release(value);
        }
    }

    private static void Check(IntPtr status)
    {
        if (status == IntPtr.Zero)
        {
            return;
        }

        var message = Marshal.PtrToStringUTF8(((delegate* unmanaged<IntPtr, IntPtr>)Api[GetErrorMessageIndex])(status)) ?? "unknown error";
        ((delegate* unmanaged<IntPtr, void>)Api[ReleaseStatusIndex])(status);
        throw new OnnxLMException($"ONNX Runtime refused a tensor or binding: {message}");
    }
}
