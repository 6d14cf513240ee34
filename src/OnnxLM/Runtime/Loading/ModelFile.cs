using System.Runtime.InteropServices;
using System.Text;

namespace OnnxLM;

/// <summary>
/// The one way a model-folder load opens a file: configurations, templates, tokenizer files, the ONNX graph and its
/// external data. A file must be a regular file once symbolic links are followed (a link to a regular file is fine)
/// and no larger than the limit of its kind; anything else is a <see cref="ModelFormatException"/> naming the file and
/// the limit, raised before the file is opened.
/// </summary>
/// <remarks>
/// Why before opening: a FIFO blocks <c>open</c> until a writer comes, for ever; <c>/dev/zero</c> reports a length of 0
/// and never ends, so reading it "to the end" runs out of memory. Reads are also capped at the limit, in case a file
/// grows (or is a /proc file that reports 0) after the check. The file type is read with <c>statx</c> on Linux;
/// elsewhere only directories are told apart (FIFOs and devices are a Unix matter, and macOS is not a target).
/// </remarks>
internal static class ModelFile
{
    /// <summary>The largest configuration or template file (genai_config.json, config.json, tokenizer_config.json, chat_template.*): 64 MiB.</summary>
    public const long MaxConfigBytes = 64L << 20;

    /// <summary>The largest tokenizer file (tokenizer.json, *.model, *.tiktoken, vocab.json, merges.txt): 512 MiB; real ones are under 40 MB.</summary>
    public const long MaxTokenizerBytes = 512L << 20;

    /// <summary>The largest ONNX graph file: 2 GiB, protobuf's limit for one message (larger weights live in external data).</summary>
    public const long MaxGraphBytes = 2L << 30;

    /// <summary>External data files are only checked to be regular: ONNX Runtime reads the ranges the graph names.</summary>
    public const long Unlimited = long.MaxValue;

    /// <summary>Checks that <paramref name="path"/> is a regular file of at most <paramref name="maxBytes"/>.</summary>
    /// <exception cref="ModelFormatException">The file is missing, not a regular file, or too large.</exception>
    public static void Check(string path, long maxBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        FileSystemInfo target = info.LinkTarget is null ? info : info.ResolveLinkTarget(returnFinalTarget: true) ?? info;
        if (target is DirectoryInfo || Directory.Exists(path))
        {
            throw new ModelFormatException($"'{path}' is a folder, not a file.", path);
        }

        if (!target.Exists)
        {
            throw new ModelFormatException($"'{path}' does not exist{(info.LinkTarget is null ? "" : $" (it is a link to '{info.LinkTarget}', which is missing)")}.", path);
        }

        long length;
        if (LinuxStat(path, out var mode, out var size))
        {
            if ((mode & 0xF000) != 0x8000)
            {
                throw new ModelFormatException(
                    $"'{path}' is {Describe(mode)}, not a regular file{(info.LinkTarget is null ? "" : $" (it links to '{info.LinkTarget}')")}; OnnxLM reads model files only from regular files.", path);
            }

            length = size;
        }
        else
        {
            try
            {
                length = ((FileInfo)target).Length;
            }
            catch (IOException e)
            {
                // A link whose target vanished, or one statx could not follow.
                throw new ModelFormatException($"'{path}' could not be read: {e.Message}", path, e);
            }
        }

        if (length > maxBytes)
        {
            throw TooLarge(path, length, maxBytes);
        }
    }

    /// <summary>Opens a checked file for reading.</summary>
    /// <exception cref="ModelFormatException">As for <see cref="Check"/>, or the file cannot be opened.</exception>
    public static FileStream OpenRead(string path, long maxBytes)
    {
        Check(path, maxBytes);
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException($"'{path}' could not be read: {e.Message}", path, e);
        }
    }

    /// <summary>All bytes of a checked file, reading no more than <paramref name="maxBytes"/>.</summary>
    /// <exception cref="ModelFormatException">As for <see cref="Check"/>, the file grew past the limit, or a read failed.</exception>
    public static byte[] ReadAllBytes(string path, long maxBytes)
    {
        using var stream = OpenRead(path, maxBytes);
        try
        {
            var buffer = new MemoryStream(stream.CanSeek ? (int)Math.Min(stream.Length, int.MaxValue) : 0);
            var chunk = new byte[81920];
            for (int n; (n = stream.Read(chunk)) > 0;)
            {
                if (buffer.Length + n > maxBytes)
                {
                    throw TooLarge(path, buffer.Length + n, maxBytes);
                }

                buffer.Write(chunk, 0, n);
            }

            return buffer.Length == buffer.Capacity ? buffer.GetBuffer() : buffer.ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException($"'{path}' could not be read: {e.Message}", path, e);
        }
    }

    /// <summary>The text of a checked UTF-8 file (a byte-order mark is skipped).</summary>
    /// <exception cref="ModelFormatException">As for <see cref="ReadAllBytes"/>.</exception>
    public static string ReadAllText(string path, long maxBytes)
    {
        var bytes = ReadAllBytes(path, maxBytes);
        var span = bytes.AsSpan();
        return Encoding.UTF8.GetString(span.StartsWith(Encoding.UTF8.Preamble) ? span[3..] : span);
    }

    /// <summary>The lines of a checked UTF-8 file, split as <see cref="File.ReadLines(string)"/> splits them.</summary>
    /// <exception cref="ModelFormatException">As for <see cref="ReadAllBytes"/>, raised on the call, not on the first line.</exception>
    public static IEnumerable<string> ReadLines(string path, long maxBytes) => Lines(new StringReader(ReadAllText(path, maxBytes)));

    private static IEnumerable<string> Lines(StringReader reader)
    {
        for (string? line; (line = reader.ReadLine()) is not null;)
        {
            yield return line;
        }
    }

    private static ModelFormatException TooLarge(string path, long length, long maxBytes) =>
        new($"'{path}' is {length:N0} bytes, more than the {maxBytes:N0} bytes OnnxLM reads from a file of its kind.", path);

    private static string Describe(int mode) => (mode & 0xF000) switch
    {
        0x1000 => "a FIFO (named pipe)",
        0x2000 => "a character device",
        0x6000 => "a block device",
        0xC000 => "a socket",
        0x4000 => "a folder",
        _ => $"a special file (mode 0x{mode:X})",
    };

    /// <summary>The file type and size through statx (following links), whose layout is the same on every Linux architecture.</summary>
    private static bool LinuxStat(string path, out int mode, out long size)
    {
        mode = 0;
        size = 0;
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        // struct statx: stx_mode is the u16 at byte 28, stx_size the u64 at byte 40; 256 bytes in all.
        var buffer = new byte[256];
        try
        {
            const int AtFdCwd = -100, StatxType = 0x1, StatxSize = 0x200;
            if (Statx(AtFdCwd, path, 0, StatxType | StatxSize, buffer) != 0)
            {
                return false;
            }
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false; // a C library without statx (glibc before 2.28): fall back to what .NET tells
        }

        mode = BitConverter.ToUInt16(buffer, 28);
        size = BitConverter.ToInt64(buffer, 40);
        return true;
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [Out] byte[] buffer);
}
