namespace OnnxLM.Hub;

/// <summary>Adds up the bytes of the files downloading at once and reports them through the caller's <see cref="IProgress{T}"/>.</summary>
internal sealed class PullProgress(IProgress<HubProgress>? progress, long total)
{
    private readonly Dictionary<string, long> _files = [];
    private long _done;

    public long Total => total;

    /// <summary>A file now has <paramref name="done"/> of <paramref name="size"/> bytes on disk.</summary>
    public void Report(string file, long done, long size)
    {
        long overall;
        lock (_files)
        {
            _files.TryGetValue(file, out var before);
            _files[file] = done;
            _done += done - before;
            overall = _done;
        }

        progress?.Report(new HubProgress(file, done, size, overall, total));
    }

    /// <summary>A file is whole (cached, or its blob already there).</summary>
    public void Completed(string file, long size) => Report(file, size, size);
}
