using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>tokenizer.json's ByteLevel decoder: byte characters back to UTF-8 bytes; a token with any other character keeps its own bytes.</summary>
internal sealed class ByteLevelDecoder : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        var bytes = new List<byte>();
        foreach (var token in tokens)
        {
            if (!ByteLevelAlphabet.TryAppendBytes(token, bytes)) bytes.AddRange(Encoding.UTF8.GetBytes(token));
        }

        tokens.Clear();
        tokens.Add(Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)));
    }
}
