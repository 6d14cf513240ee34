namespace OnnxLM.Hub;

/// <summary>How far a download is: one file's bytes and the whole pull's.</summary>
/// <param name="File">The file being written (its path in the repository).</param>
/// <param name="FileBytesDone">Bytes of that file on disk, including a resumed partial.</param>
/// <param name="FileBytesTotal">That file's size.</param>
/// <param name="BytesDone">Bytes of all chosen files on disk, cached ones included.</param>
/// <param name="BytesTotal">Size of all chosen files.</param>
public readonly record struct HubProgress(string File, long FileBytesDone, long FileBytesTotal, long BytesDone, long BytesTotal);
