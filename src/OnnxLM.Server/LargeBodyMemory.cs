using System.Runtime;

namespace OnnxLM.Server;

/// <summary>
/// Gives the memory of large request bodies back to the operating system once their requests are done.
/// </summary>
/// <remarks>
/// A body over <see cref="Threshold"/> leaves buffers and strings of several megabytes each on the large-object heap.
/// The runtime collects that heap only when more large objects are allocated, so an idle server that has just refused
/// eight 4 MB prompts kept the memory they took (+75 % of its resident set, measured) until the next burst. A request
/// that read such a body asks for one compacting collection a second after it ends; requests ending within that second
/// share it, so a stream of large bodies costs at most one collection a second, and small requests never cause one.
/// </remarks>
internal static class LargeBodyMemory
{
    /// <summary>Bodies of this many bytes or more ask for a collection (1 MiB: ordinary requests are far smaller).</summary>
    public const int Threshold = 1 << 20;

    private static readonly TimeSpan Delay = TimeSpan.FromSeconds(1);
    private static int _scheduled;
    private static int _collections;

    /// <summary>How many collections large bodies have asked for since the process started.</summary>
    public static int Collections => Volatile.Read(ref _collections);

    /// <summary>Called when a request that read a body of <see cref="Threshold"/> bytes or more has completed.</summary>
    public static void Released()
    {
        if (Interlocked.Exchange(ref _scheduled, 1) == 1) return;
        _ = Task.Delay(Delay).ContinueWith(static _ =>
        {
            Volatile.Write(ref _scheduled, 0);
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            Interlocked.Increment(ref _collections);
        }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }
}
