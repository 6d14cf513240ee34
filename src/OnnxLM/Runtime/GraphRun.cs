using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxLM;

/// <summary>Pieces every run of the decoder graph shares: id checks, integer inputs, cancellation, reading logits (the inputs themselves are <see cref="GraphFeed"/>'s).</summary>
internal static class GraphRun
{
    /// <summary>Throws when an id is outside the model's vocabulary.</summary>
    public static void CheckTokenIds(ReadOnlySpan<int> tokenIds, int vocab, string paramName)
    {
        foreach (var id in tokenIds)
        {
            if ((uint)id >= (uint)vocab)
            {
                throw new ArgumentOutOfRangeException(paramName, id,
                    $"Token id {id} is outside the model's vocabulary (valid ids are 0 to {vocab - 1}).");
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="run"/> so that cancelling <paramref name="cancellationToken"/> terminates it through
    /// <paramref name="runOptions"/> and surfaces as <see cref="OperationCanceledException"/>; the options are reusable afterwards.
    /// </summary>
    public static T Cancellable<T>(RunOptions runOptions, CancellationToken cancellationToken, Func<T> run)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var registration = cancellationToken.CanBeCanceled
            ? cancellationToken.Register(static o => ((RunOptions)o!).Terminate = true, runOptions)
            : default;
        try
        {
            return run();
        }
        catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("The model run was cancelled.", cancellationToken);
        }
        finally
        {
            // Unregister first (Dispose waits for a callback in flight): a cancel landing after the run but before the reset
            // would otherwise leave Terminate set, and the next run, under another token, would fail as terminated.
            registration.Dispose();
            runOptions.Terminate = false;
        }
    }

    /// <summary>
    /// Runs the graph with what <paramref name="binding"/> holds; cancelling <paramref name="cancellationToken"/> terminates the
    /// run through <paramref name="runOptions"/> and surfaces as <see cref="OperationCanceledException"/>. No closure or task:
    /// nothing is allocated per call (a token source's first registration aside).
    /// </summary>
    public static void RunBound(InferenceSession session, RunOptions runOptions, OrtIoBinding binding, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var registration = cancellationToken.CanBeCanceled
            ? cancellationToken.Register(static o => ((RunOptions)o!).Terminate = true, runOptions)
            : default;
        try
        {
            session.RunWithBinding(runOptions, binding);
        }
        catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("The model run was cancelled.", cancellationToken);
        }
        finally
        {
            // Unregister first (Dispose waits for a callback in flight): a cancel landing after the run but before the reset
            // would otherwise leave Terminate set, and the next run, under another token, would fail as terminated.
            registration.Dispose();
            runOptions.Terminate = false;
        }
    }

    /// <summary>Bytes of one element of an int64 or int32 graph input.</summary>
    public static int IntegerSize(TensorElementType type) => type == TensorElementType.Int64 ? 8 : 4;

    /// <summary>Writes element <paramref name="index"/> of an int64 or int32 input buffer.</summary>
    public static unsafe void WriteInteger(byte* destination, TensorElementType type, int index, long value)
    {
        if (type == TensorElementType.Int64) ((long*)destination)[index] = value;
        else ((int*)destination)[index] = checked((int)value);
    }

    /// <summary>Copies <paramref name="count"/> logits from <paramref name="start"/> as float32 (converting float16).</summary>
    public static void CopyAsFloat(OrtValue value, TensorElementType type, int start, int count, Span<float> destination)
    {
        if (type == TensorElementType.Float)
        {
            value.GetTensorDataAsSpan<float>().Slice(start, count).CopyTo(destination);
        }
        else
        {
            var halves = MemoryMarshal.Cast<Float16, Half>(value.GetTensorDataAsSpan<Float16>().Slice(start, count));
            TensorPrimitives.ConvertToSingle(halves, destination[..count]);
        }
    }

    /// <summary>Checks that a run's logits are [<paramref name="batch"/>, <paramref name="n"/>, <paramref name="vocab"/>].</summary>
    /// <exception cref="ModelFormatException">The graph returned another shape.</exception>
    public static void CheckLogits(OrtValue logits, int batch, int n, int vocab, string graphPath)
    {
        var shape = logits.GetTensorTypeAndShape().Shape;
        if (shape is not [_, _, _] || shape[0] != batch || shape[1] != n || shape[2] != vocab)
        {
            throw new ModelFormatException($"The graph returned logits of shape [{string.Join(", ", shape)}]; expected [{batch}, {n}, {vocab}].", graphPath);
        }
    }
}
