using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// Reads a tiktoken file (one "base64-bytes rank" line per token: OpenAI's encodings, Llama-3's original
/// tokenizer.model) into a byte-level BPE. tiktoken merges the adjacent pair whose concatenation has the lowest
/// rank, so every split of a token into two tokens of lower rank is a merge of that rank. The word regex and the
/// special tokens are not in the file: they follow the encoding, told by its name or its size. OnnxLM does not use
/// Microsoft.ML.Tokenizers' TiktokenTokenizer here because its regexes run on UTF-16 units (see PatternMatcher), which
/// gives other ids than tiktoken's next to astral letters (benchmarks/RESULTS.md, tokenizer-mlnet).
/// </summary>
internal static class TiktokenFile
{
    private const string Cl100kPattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string O200kPattern = @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>Whether a file looks like tiktoken's format (its first line is base64, a space and a number).</summary>
    public static bool IsTiktoken(string file)
    {
        using var reader = new StreamReader(ModelFile.OpenRead(file, ModelFile.MaxTokenizerBytes), System.Text.Encoding.UTF8, false, 256);
        var buffer = new char[256];
        var n = reader.Read(buffer, 0, buffer.Length);
        var line = new string(buffer, 0, n).Split('\n')[0].TrimEnd('\r');
        var space = line.IndexOf(' ');
        return space > 0 && int.TryParse(line.AsSpan(space + 1), out _) && line[..space].All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=');
    }

    public static TokenizerPipeline Load(string file)
    {
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var line in ModelFile.ReadLines(file, ModelFile.MaxTokenizerBytes))
        {
            lineNumber++;
            if (line.Length == 0)
            {
                continue;
            }

            var space = line.IndexOf(' ');
            byte[] bytes;
            try
            {
                bytes = Convert.FromBase64String(space > 0 ? line[..space] : "!");
            }
            catch (FormatException)
            {
                throw new ModelFormatException($"Tiktoken file '{file}' line {lineNumber} does not start with a base64 token.", file);
            }

            if (!int.TryParse(line.AsSpan(space + 1), out var rank) || rank < 0)
            {
                throw new ModelFormatException($"Tiktoken file '{file}' line {lineNumber} has no non-negative rank after the token.", file);
            }

            ranks[ByteLevelAlphabet.Encode(bytes)] = rank;
        }

        var merges = new List<(int Rank, string Left, string Right)>();
        foreach (var (token, rank) in ranks)
        {
            for (var split = 1; split < token.Length; split++)
            {
                if (ranks.TryGetValue(token[..split], out var left) && ranks.TryGetValue(token[split..], out var right) && left < rank && right < rank)
                {
                    merges.Add((rank, token[..split], token[split..]));
                }
            }
        }

        merges.Sort((a, b) => a.Rank.CompareTo(b.Rank));
        var model = new BpeModel(ranks, merges.Select(m => (m.Left, m.Right)), source: file);
        var (pattern, specials) = EncodingOf(Path.GetFileName(file), ranks.Count);
        var added = specials.Select(s => new AddedToken(s.Id, s.Content, Special: true)).ToList();
        var preTokenizer = new SequencePreTokenizer([SplitPreTokenizer.Pattern(PatternMatcher.FromRegex(pattern, $"Tiktoken file '{file}' word pattern"), SplitBehavior.Isolated, false), new ByteLevelPreTokenizer(false, false)]);
        return new TokenizerPipeline(file, model, added, null, preTokenizer, null, new ByteLevelDecoder());
    }

    private static (string Pattern, (string Content, int Id)[] Specials) EncodingOf(string name, int size)
    {
        if (name.Contains("o200k", StringComparison.OrdinalIgnoreCase) || size == 199998)
        {
            return (O200kPattern, [("<|endoftext|>", 199999), ("<|endofprompt|>", 200018)]);
        }

        if (name.Contains("cl100k", StringComparison.OrdinalIgnoreCase) || size == 100256)
        {
            return (Cl100kPattern, [("<|endoftext|>", 100257), ("<|fim_prefix|>", 100258), ("<|fim_middle|>", 100259), ("<|fim_suffix|>", 100260), ("<|endofprompt|>", 100276)]);
        }

        if (size == 128000)
        {
            // Llama 3's original tokenizer.model: cl100k's pattern with 1-3 digit numbers and its 256 reserved specials.
            string[] named = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"];
            var specials = new (string, int)[256];
            for (var i = 0; i < 256; i++)
            {
                specials[i] = (i < named.Length ? named[i] : $"<|reserved_special_token_{i - named.Length + 2}|>", 128000 + i);
            }

            return (Cl100kPattern, specials);
        }

        // r50k / p50k / gpt2: GPT-2's pattern.
        return (Gpt2Pattern, size >= 50256 ? [("<|endoftext|>", 50256)] : []);
    }
}
