namespace OnnxLM.Hub.Tests;

/// <summary>A full disk is told apart from other write errors by the operating system's own error, and says what to do.</summary>
public sealed class DiskFullTests
{
    [SkippableFact]
    public void TheOperatingSystemsNoSpaceErrorIsRecognised()
    {
        // /dev/full answers every write with ENOSPC, the error a full disk gives.
        Skip.IfNot(File.Exists("/dev/full"), "/dev/full exists only on Linux");
        var e = Assert.ThrowsAny<IOException>(() =>
        {
            using var full = new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
            full.Write(new byte[4096]);
            full.Flush();
        });
        Assert.True(BlobDownloader.IsDiskFull(e), $"{e.GetType().Name} {e.HResult}: {e.Message}");
        Assert.False(BlobDownloader.IsDiskFull(new IOException("The response ended prematurely.")));

        var error = BlobDownloader.DiskFull("onnx/model_q4.onnx_data", "/cache/models--a--b/blobs/abc", 300_000, e);
        Assert.Equal(HubErrorKind.DiskFull, error.Kind);
        Assert.Equal("No space left on the disk of the cache writing 'onnx/model_q4.onnx_data' (300000 bytes) to /cache/models--a--b/blobs: free space there, or set HF_HUB_CACHE to a larger disk.", error.Message);
    }
}
