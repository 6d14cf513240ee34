using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace OnnxLM;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> with a BPE model and reproduces the tokenizers library's pipeline:
/// added-token splitting, normalizer (Prepend / Replace / NFC-family), pre-tokenizer (ByteLevel with GPT-2's
/// regex, Metaspace, Split), BPE merges by rank with byte fallback and unknown-token fusing, and the decoder
/// (ByteLevel, or Replace ▁ + ByteFallback + Fuse + Strip as Llama uses, or Metaspace).
/// Also reads GPT-2's <c>vocab.json</c> + <c>merges.txt</c> pair as a byte-level BPE.
/// </summary>
internal sealed partial class HfBpeTokenizer : ITokenizerBackend
{
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly string _file;
    private readonly Dictionary<string, int> _vocab;
    private readonly string[] _idToToken;
    private readonly Dictionary<(int, int), (int Rank, int Merged)> _merges = new();
    private readonly Dictionary<string, int> _added = new(StringComparer.Ordinal);
    private readonly HashSet<int> _special = [];
    private readonly Regex? _addedSplitter;
    private readonly Func<string, string>? _normalize;
    private readonly Func<string, IEnumerable<string>> _preTokenize;
    private readonly bool _byteLevel;
    private readonly bool _byteFallback;
    private readonly int? _unkId;
    private readonly bool _fuseUnk;
    private readonly DecoderKind _decoder;
    private readonly int[] _byteIds = new int[256];
    private readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly Lock _cacheLock = new();

    private enum DecoderKind { ByteLevel, SentencePiece, Metaspace, Concatenate }

    private HfBpeTokenizer(string file, JsonObject root)
    {
        _file = file;
        var model = root["model"] as JsonObject ?? throw Fail("has no \"model\" object");
        var type = (string?)model["type"];
        if (type != "BPE")
        {
            throw Fail($"uses a \"{type}\" model; OnnxLM reads BPE tokenizers (byte-level like GPT-2, or SentencePiece-style like Llama)");
        }

        _vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (token, id) in model["vocab"] as JsonObject ?? throw Fail("has no model.vocab"))
        {
            _vocab[token] = (int)id!;
        }

        var addedList = root["added_tokens"] as JsonArray ?? [];
        var idsInVocab = new Dictionary<int, string>();
        foreach (var (token, id) in _vocab) idsInVocab[id] = token;
        var nextFree = _vocab.Count == 0 ? 0 : _vocab.Values.Max() + 1;
        foreach (var entry in addedList.OfType<JsonObject>())
        {
            var id = (int)entry["id"]!;
            var content = (string)entry["content"]!;
            if (_vocab.TryGetValue(content, out var existing))
            {
                id = existing;
            }
            else if (idsInVocab.ContainsKey(id))
            {
                // The tokenizers library gives an added token whose id is taken by another vocabulary entry the next free id.
                id = nextFree++;
            }

            _added[content] = id;
            if ((bool?)entry["special"] == true)
            {
                _special.Add(id);
            }
        }

        var size = Math.Max(_vocab.Count == 0 ? 0 : _vocab.Values.Max() + 1, _added.Count == 0 ? 0 : _added.Values.Max() + 1);
        _idToToken = new string[size];
        foreach (var (token, id) in _vocab) _idToToken[id] = token;
        foreach (var (token, id) in _added) _idToToken[id] = token;

        var merges = model["merges"] as JsonArray ?? [];
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank] switch
            {
                JsonArray pair => ((string)pair[0]!, (string)pair[1]!),
                var s => SplitMerge((string)s!),
            };
            if (_vocab.TryGetValue(left, out var l) && _vocab.TryGetValue(right, out var r) && _vocab.TryGetValue(left + right, out var m))
            {
                _merges.TryAdd((l, r), (rank, m));
            }
        }

        _byteFallback = (bool?)model["byte_fallback"] ?? false;
        _fuseUnk = (bool?)model["fuse_unk"] ?? false;
        if (model["unk_token"] is JsonValue unk && _vocab.TryGetValue((string)unk!, out var unkId))
        {
            _unkId = unkId;
        }

        for (var b = 0; b < 256; b++)
        {
            _byteIds[b] = _vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
        }

        if (_added.Count > 0)
        {
            // Longest first, so "<|endoftext|>" wins over any shorter added token it contains.
            var pattern = string.Join("|", _added.Keys.OrderByDescending(k => k.Length).Select(Regex.Escape));
            _addedSplitter = new Regex(pattern, RegexOptions.CultureInvariant);
        }

        _normalize = BuildNormalizer(root["normalizer"] as JsonObject);
        (_preTokenize, _byteLevel) = BuildPreTokenizer(root["pre_tokenizer"] as JsonObject);
        _decoder = DetectDecoder(root["decoder"] as JsonObject, _byteLevel);
    }

    public static HfBpeTokenizer FromTokenizerJson(string file) => new(file, ModelConfig.ReadJson(file));

    /// <summary>GPT-2's original files: vocab.json (token → id) and merges.txt ("#version" line, then "a b" per line).</summary>
    public static HfBpeTokenizer FromVocabAndMerges(string vocabFile, string mergesFile)
    {
        var vocab = ModelConfig.ReadJson(vocabFile);
        var merges = new JsonArray();
        foreach (var line in File.ReadLines(mergesFile))
        {
            if (line.Length > 0 && !line.StartsWith("#version", StringComparison.Ordinal))
            {
                merges.Add(line);
            }
        }

        var root = new JsonObject
        {
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab.DeepClone(), ["merges"] = merges },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
        };
        if (vocab["<|endoftext|>"] is JsonValue eot)
        {
            root["added_tokens"] = new JsonArray(new JsonObject { ["id"] = (int)eot, ["content"] = "<|endoftext|>", ["special"] = true });
        }

        return new HfBpeTokenizer(vocabFile, root);
    }

    public int VocabularySize => _idToToken.Length;

    public bool AddsBosByDefault => _decoder == DecoderKind.SentencePiece || _decoder == DecoderKind.Metaspace;

    public void Encode(string text, List<int> output)
    {
        var start = 0;
        if (_addedSplitter is not null)
        {
            foreach (Match match in _addedSplitter.Matches(text))
            {
                EncodeSegment(text[start..match.Index], output);
                output.Add(_added[match.Value]);
                start = match.Index + match.Length;
            }
        }

        EncodeSegment(text[start..], output);
    }

    private void EncodeSegment(string segment, List<int> output)
    {
        if (segment.Length == 0)
        {
            return;
        }

        if (_normalize is not null)
        {
            segment = _normalize(segment);
        }

        foreach (var word in _preTokenize(segment))
        {
            var symbols = _byteLevel ? ByteLevelAlphabet.Encode(Encoding.UTF8.GetBytes(word)) : word;
            int[]? ids;
            lock (_cacheLock)
            {
                _cache.TryGetValue(symbols, out ids);
            }

            if (ids is null)
            {
                ids = EncodeWord(symbols);
                if (symbols.Length < 64)
                {
                    lock (_cacheLock)
                    {
                        if (_cache.Count > 100_000) _cache.Clear();
                        _cache[symbols] = ids;
                    }
                }
            }

            output.AddRange(ids);
        }
    }

    /// <summary>BPE on one word: characters (or byte-fallback pieces) merged lowest rank first, leftmost first among equals.</summary>
    private int[] EncodeWord(string word)
    {
        if (_vocab.TryGetValue(word, out var whole) && _merges.Count == 0)
        {
            return [whole];
        }

        var symbols = new List<int>(word.Length);
        var lastWasUnk = false;
        for (var i = 0; i < word.Length;)
        {
            var length = char.IsSurrogatePair(word, i) ? 2 : 1;
            var ch = word.Substring(i, length);
            i += length;
            if (_vocab.TryGetValue(ch, out var id))
            {
                symbols.Add(id);
                lastWasUnk = false;
            }
            else if (_byteFallback && Encoding.UTF8.GetBytes(ch) is var bytes && bytes.All(b => _byteIds[b] >= 0))
            {
                foreach (var b in bytes) symbols.Add(_byteIds[b]);
                lastWasUnk = false;
            }
            else if (_unkId is { } unk)
            {
                if (!(_fuseUnk && lastWasUnk))
                {
                    symbols.Add(unk);
                }

                lastWasUnk = true;
            }
        }

        while (symbols.Count > 1)
        {
            var bestRank = int.MaxValue;
            var bestPair = (0, 0);
            var bestMerged = 0;
            for (var i = 0; i + 1 < symbols.Count; i++)
            {
                if (_merges.TryGetValue((symbols[i], symbols[i + 1]), out var merge) && merge.Rank < bestRank)
                {
                    bestRank = merge.Rank;
                    bestPair = (symbols[i], symbols[i + 1]);
                    bestMerged = merge.Merged;
                }
            }

            if (bestRank == int.MaxValue)
            {
                break;
            }

            // Merging every non-overlapping occurrence left to right equals applying them one at a time in position order.
            var write = 0;
            for (var read = 0; read < symbols.Count; read++)
            {
                if (read + 1 < symbols.Count && symbols[read] == bestPair.Item1 && symbols[read + 1] == bestPair.Item2)
                {
                    symbols[write++] = bestMerged;
                    read++;
                }
                else
                {
                    symbols[write++] = symbols[read];
                }
            }

            symbols.RemoveRange(write, symbols.Count - write);
        }

        return symbols.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens, bool continuation = false)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        void FlushBytes()
        {
            if (bytes.Count > 0)
            {
                text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
                bytes.Clear();
            }
        }

        foreach (var id in ids)
        {
            var token = TokenToPiece(id);
            if (_special.Contains(id) || (_added.ContainsKey(token) && !_vocab.ContainsKey(token)))
            {
                if (skipSpecialTokens && _special.Contains(id))
                {
                    continue;
                }

                FlushBytes();
                text.Append(token);
                continue;
            }

            switch (_decoder)
            {
                case DecoderKind.ByteLevel:
                    foreach (var c in token)
                    {
                        if (ByteLevelAlphabet.TryCharToByte(c, out var b)) bytes.Add(b);
                        else { FlushBytes(); text.Append(c); }
                    }

                    break;
                case DecoderKind.SentencePiece or DecoderKind.Metaspace:
                    if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>' &&
                        byte.TryParse(token.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var raw))
                    {
                        bytes.Add(raw);
                    }
                    else
                    {
                        FlushBytes();
                        text.Append(token.Replace('\u2581', ' '));
                    }

                    break;
                default:
                    FlushBytes();
                    text.Append(token);
                    break;
            }
        }

        FlushBytes();
        // Llama's decoder strips the one space the normalizer prepended.
        if (!continuation && _decoder is DecoderKind.SentencePiece or DecoderKind.Metaspace && text.Length > 0 && text[0] == ' ')
        {
            text.Remove(0, 1);
        }

        return text.ToString();
    }

    public string TokenToPiece(int id)
    {
        if ((uint)id >= (uint)_idToToken.Length || _idToToken[id] is null)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is not in the tokenizer's vocabulary of {_idToToken.Length} ids ({_file}).");
        }

        return _idToToken[id];
    }

    public int? PieceToId(string piece) =>
        _added.TryGetValue(piece, out var a) ? a : _vocab.TryGetValue(piece, out var v) ? v : null;

    public bool IsSpecialToken(int id) => _special.Contains(id);

    private Func<string, string>? BuildNormalizer(JsonObject? spec)
    {
        if (spec is null)
        {
            return null;
        }

        var type = (string?)spec["type"];
        switch (type)
        {
            case "Sequence":
                var steps = (spec["normalizers"] as JsonArray ?? []).OfType<JsonObject>().Select(BuildNormalizer).OfType<Func<string, string>>().ToArray();
                return s => steps.Aggregate(s, (acc, f) => f(acc));
            case "Prepend":
                var prefix = (string)spec["prepend"]!;
                return s => prefix + s;
            case "Replace":
                var (pattern, content) = ReplaceSpec(spec);
                return s => pattern.Replace(s, content);
            case "NFC": return s => s.Normalize(NormalizationForm.FormC);
            case "NFD": return s => s.Normalize(NormalizationForm.FormD);
            case "NFKC": return s => s.Normalize(NormalizationForm.FormKC);
            case "NFKD": return s => s.Normalize(NormalizationForm.FormKD);
            default: throw Fail($"uses the normalizer \"{type}\", which OnnxLM does not implement (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD)");
        }
    }

    private (Regex Pattern, string Content) ReplaceSpec(JsonObject spec)
    {
        var pattern = spec["pattern"] as JsonObject ?? throw Fail("has a Replace step without a pattern");
        var regex = pattern["String"] is JsonValue s
            ? new Regex(Regex.Escape((string)s!), RegexOptions.CultureInvariant)
            : new Regex((string)pattern["Regex"]!, RegexOptions.CultureInvariant);
        return (regex, ((string?)spec["content"] ?? string.Empty).Replace("$", "$$", StringComparison.Ordinal));
    }

    private (Func<string, IEnumerable<string>>, bool ByteLevel) BuildPreTokenizer(JsonObject? spec)
    {
        if (spec is null)
        {
            return (s => [s], false);
        }

        var type = (string?)spec["type"];
        switch (type)
        {
            case "ByteLevel":
                var prefixSpace = (bool?)spec["add_prefix_space"] ?? false;
                var useRegex = (bool?)spec["use_regex"] ?? true;
                var regex = new Regex(Gpt2Pattern, RegexOptions.CultureInvariant);
                return (s =>
                {
                    if (prefixSpace && !s.StartsWith(' ')) s = " " + s;
                    return useRegex ? regex.Matches(s).Select(m => m.Value) : [s];
                }, true);
            case "Metaspace":
                var replacement = (string?)spec["replacement"] ?? "\u2581";
                var scheme = (string?)spec["prepend_scheme"] ?? ((bool?)spec["add_prefix_space"] == false ? "never" : "always");
                var split = (bool?)spec["split"] ?? true;
                return (s =>
                {
                    s = s.Replace(" ", replacement, StringComparison.Ordinal);
                    if (scheme != "never" && !s.StartsWith(replacement, StringComparison.Ordinal)) s = replacement + s;
                    return split ? SplitBefore(s, replacement) : [s];
                }, false);
            case "Split":
                var pattern = spec["pattern"] as JsonObject ?? throw Fail("has a Split pre-tokenizer without a pattern");
                var splitter = pattern["Regex"] is JsonValue r ? new Regex((string)r!, RegexOptions.CultureInvariant)
                    : new Regex(Regex.Escape((string)pattern["String"]!), RegexOptions.CultureInvariant);
                if ((string?)spec["behavior"] != "Isolated" || (bool?)spec["invert"] == true)
                {
                    throw Fail("uses a Split pre-tokenizer other than behavior \"Isolated\" (not implemented)");
                }

                return (s => IsolatedSplit(splitter, s), false);
            case "Sequence":
                var parts = (spec["pretokenizers"] as JsonArray ?? []).OfType<JsonObject>().Select(BuildPreTokenizer).ToArray();
                var byteLevel = parts.Any(p => p.ByteLevel);
                return (s => parts.Aggregate<(Func<string, IEnumerable<string>>, bool), IEnumerable<string>>([s], (words, p) => words.SelectMany(p.Item1)), byteLevel);
            default:
                throw Fail($"uses the pre-tokenizer \"{type}\", which OnnxLM does not implement (supported: ByteLevel, Metaspace, Split, Sequence)");
        }
    }

    private static IEnumerable<string> SplitBefore(string s, string marker)
    {
        var start = 0;
        for (var i = 1; i < s.Length; i++)
        {
            if (string.CompareOrdinal(s, i, marker, 0, marker.Length) == 0)
            {
                yield return s[start..i];
                start = i;
            }
        }

        yield return s[start..];
    }

    private static IEnumerable<string> IsolatedSplit(Regex regex, string s)
    {
        var start = 0;
        foreach (Match m in regex.Matches(s))
        {
            if (m.Index > start) yield return s[start..m.Index];
            if (m.Length > 0) yield return m.Value;
            start = m.Index + m.Length;
        }

        if (start < s.Length) yield return s[start..];
    }

    private DecoderKind DetectDecoder(JsonObject? spec, bool byteLevel)
    {
        var type = (string?)spec?["type"];
        return type switch
        {
            "ByteLevel" => DecoderKind.ByteLevel,
            "Metaspace" => DecoderKind.Metaspace,
            "Sequence" => (spec!["decoders"] as JsonArray ?? []).OfType<JsonObject>().Any(d => (string?)d["type"] == "ByteFallback" || (string?)d["type"] == "Replace")
                ? DecoderKind.SentencePiece
                : throw Fail("uses a decoder sequence OnnxLM does not implement (supported: ByteLevel, Metaspace, Replace ▁ + ByteFallback + Fuse + Strip)"),
            null => byteLevel ? DecoderKind.ByteLevel : DecoderKind.Concatenate,
            _ => throw Fail($"uses the decoder \"{type}\", which OnnxLM does not implement"),
        };
    }

    private static (string, string) SplitMerge(string merge)
    {
        var space = merge.IndexOf(' ', 1);
        return space < 0 ? (merge, string.Empty) : (merge[..space], merge[(space + 1)..]);
    }

    private ModelFormatException Fail(string what) => new($"Tokenizer file '{_file}' {what}.", _file);
}
