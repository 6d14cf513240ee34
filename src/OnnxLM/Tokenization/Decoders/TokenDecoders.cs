using System.Globalization;
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
            var start = bytes.Count;
            var all = true;
            foreach (var c in token)
            {
                if (ByteLevelAlphabet.TryCharToByte(c, out var b)) bytes.Add(b);
                else { all = false; break; }
            }

            if (!all)
            {
                bytes.RemoveRange(start, bytes.Count - start);
                bytes.AddRange(Encoding.UTF8.GetBytes(token));
            }
        }

        tokens.Clear();
        tokens.Add(Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)));
    }
}

/// <summary>Gathers runs of "&lt;0xAB&gt;" byte tokens into text; bytes that are not valid UTF-8 become one U+FFFD each.</summary>
internal sealed class ByteFallbackDecoder : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        var output = new List<string>(tokens.Count);
        var bytes = new List<byte>();
        void Flush()
        {
            if (bytes.Count == 0)
            {
                return;
            }

            try
            {
                output.Add(new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes.ToArray()));
            }
            catch (DecoderFallbackException)
            {
                for (var i = 0; i < bytes.Count; i++) output.Add("\uFFFD");
            }

            bytes.Clear();
        }

        foreach (var token in tokens)
        {
            if (TryParseByte(token, out var b))
            {
                bytes.Add(b);
                continue;
            }

            Flush();
            output.Add(token);
        }

        Flush();
        tokens.Clear();
        tokens.AddRange(output);
    }

    public static bool TryParseByte(string token, out byte b)
    {
        b = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>' &&
            byte.TryParse(token.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out b);
    }
}

/// <summary>Joins all tokens into one.</summary>
internal sealed class FuseDecoder : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        var joined = string.Concat(tokens);
        tokens.Clear();
        tokens.Add(joined);
    }
}

/// <summary>Replaces a string or regex in every token (Llama's "▁" → " ").</summary>
internal sealed class ReplaceDecoder(ReplaceNormalizer replace) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        for (var i = 0; i < tokens.Count; i++) tokens[i] = replace.Apply(tokens[i]);
    }
}

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of a character from every token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            var from = 0;
            // A continuation keeps the space the start of a text would lose.
            var maxStart = continuation && i == 0 ? 0 : start;
            while (from < Math.Min(maxStart, t.Length) && t[from] == content) from++;
            var to = t.Length;
            for (var k = 0; k < stop && to > from && t[to - 1] == content; k++) to--;
            tokens[i] = t[from..to];
        }
    }
}

/// <summary>Metaspace: "▁" becomes a space, except in the first token of a text when a "▁" was prepended on encode.</summary>
internal sealed class MetaspaceDecoder(char replacement, PrependScheme scheme) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var drop = i == 0 && !continuation && scheme != PrependScheme.Never;
            tokens[i] = drop ? tokens[i].Replace(replacement.ToString(), "", StringComparison.Ordinal) : tokens[i].Replace(replacement, ' ');
        }
    }
}

/// <summary>WordPiece: "##" continuations joined to the word before, other tokens after a space; optional clean-up of spaces before punctuation.</summary>
internal sealed class WordPieceDecoder(string prefix, bool cleanup) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            if (i != 0 || continuation)
            {
                t = t.StartsWith(prefix, StringComparison.Ordinal) ? t[prefix.Length..] : " " + t;
            }

            tokens[i] = cleanup ? CleanUp(t, decoderRule: true) : t;
        }
    }

    /// <summary>
    /// The clean-up of spaces before punctuation and in contractions that BERT's decoder and transformers'
    /// <c>clean_up_tokenization_spaces</c> apply (the decoder also turns " do not" into " don't").
    /// </summary>
    public static string CleanUp(string s, bool decoderRule)
    {
        s = s.Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal).Replace(" !", "!", StringComparison.Ordinal)
            .Replace(" ,", ",", StringComparison.Ordinal).Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
            .Replace(" 'm", "'m", StringComparison.Ordinal);
        if (decoderRule)
        {
            s = s.Replace(" do not", " don't", StringComparison.Ordinal);
        }

        return s.Replace(" 's", "'s", StringComparison.Ordinal).Replace(" 've", "'ve", StringComparison.Ordinal).Replace(" 're", "'re", StringComparison.Ordinal);
    }
}

/// <summary>The BPE decoder of end-of-word-suffix vocabularies (CLIP's "&lt;/w&gt;"): the suffix becomes a space, except at the end.</summary>
internal sealed class BpeSuffixDecoder(string suffix) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            tokens[i] = tokens[i].Replace(suffix, i == tokens.Count - 1 ? "" : " ", StringComparison.Ordinal);
        }
    }
}

/// <summary>CTC: repeated tokens collapsed, the pad token removed, the word delimiter made a space.</summary>
internal sealed class CtcDecoder(string padToken, string wordDelimiter, bool cleanup) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        var output = new List<string>(tokens.Count);
        string? previous = null;
        foreach (var t in tokens)
        {
            if (t != previous)
            {
                var s = t == padToken ? "" : t.Replace(wordDelimiter, " ", StringComparison.Ordinal);
                if (cleanup) s = WordPieceDecoder.CleanUp(s, decoderRule: true).Replace(wordDelimiter, " ", StringComparison.Ordinal);
                if (s.Length > 0) output.Add(s);
            }

            previous = t;
        }

        tokens.Clear();
        tokens.AddRange(output);
    }
}

/// <summary>Decoders applied one after another.</summary>
internal sealed class SequenceDecoder(IReadOnlyList<ITokenDecoder> steps) : ITokenDecoder
{
    public void Decode(List<string> tokens, bool continuation)
    {
        foreach (var step in steps) step.Decode(tokens, continuation);
    }
}
