namespace OnnxLM.Gateway;

/// <summary>A 64-bit hash of text (FNV-1a over UTF-16 code units, then a SplitMix64 finalizer): stable across processes and machines.</summary>
internal static class Hashing
{
    public static ulong Hash64(string text)
    {
        var h = 14695981039346656037UL;
        foreach (var c in text)
        {
            h = (h ^ (byte)c) * 1099511628211UL;
            h = (h ^ (byte)(c >> 8)) * 1099511628211UL;
        }

        return Mix(h);
    }

    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
