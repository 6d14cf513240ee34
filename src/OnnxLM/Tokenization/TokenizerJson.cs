using System.Text;
using System.Text.Json.Nodes;

namespace OnnxLM.Tokenization;

/// <summary>
/// Builds the pipeline a Hugging Face <c>tokenizer.json</c> describes, stage by stage. Unknown stage types and
/// malformed fields are <see cref="ModelFormatException"/>s naming the file and the field.
/// </summary>
internal sealed class TokenizerJson
{
    private readonly string _file;

    private TokenizerJson(string file) => _file = file;

    public static TokenizerPipeline Load(string file) => new TokenizerJson(file).Build(ModelConfig.ReadJson(file, ModelFile.MaxTokenizerBytes));

    /// <summary>GPT-2's original files: vocab.json (token → id) and merges.txt ("#version" line, then "a b" per line).</summary>
    public static TokenizerPipeline LoadVocabAndMerges(string vocabFile, string mergesFile)
    {
        var vocab = ModelConfig.ReadJson(vocabFile, ModelFile.MaxTokenizerBytes);
        var merges = new JsonArray();
        foreach (var line in ModelFile.ReadLines(mergesFile, ModelFile.MaxTokenizerBytes))
        {
            if (line.Length > 0 && !line.StartsWith("#version", StringComparison.Ordinal))
            {
                merges.Add(line);
            }
        }

        var root = new JsonObject
        {
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab.DeepClone(), ["merges"] = merges },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
        };
        if (vocab["<|endoftext|>"] is JsonValue eot && eot.TryGetValue<int>(out var eotId))
        {
            root["added_tokens"] = new JsonArray(new JsonObject { ["id"] = eotId, ["content"] = "<|endoftext|>", ["special"] = true });
        }

        return new TokenizerJson(vocabFile).Build(root);
    }

    private TokenizerPipeline Build(JsonObject root)
    {
        var model = BuildModel(Object(root, "model") ?? throw Fail("model", "is missing"));
        var normalizer = root["normalizer"] is JsonObject n ? BuildNormalizer(n, "normalizer") : null;
        var preTokenizer = root["pre_tokenizer"] is JsonObject p ? BuildPreTokenizer(p, "pre_tokenizer") : null;
        var postProcessor = root["post_processor"] is JsonObject pp ? BuildPostProcessor(pp, "post_processor", model) : null;
        var decoder = root["decoder"] is JsonObject d ? BuildDecoder(d, "decoder") : null;
        var pipeline = new TokenizerPipeline(_file, model, AddedTokens(root, model), normalizer, preTokenizer, postProcessor, decoder);
        if (postProcessor is not null)
        {
            // The post-processor's special tokens name ids of their own: each must be a token the tokenizer has.
            var added = new List<int>();
            pipeline.Encode("", addSpecialTokens: true, added);
            foreach (var id in added)
            {
                try
                {
                    _ = pipeline.TokenToPiece(id);
                }
                catch (ArgumentOutOfRangeException)
                {
                    throw Fail("post_processor", $"adds token id {id}, which is not one of the tokenizer's {pipeline.VocabularySize} ids");
                }
            }
        }

        return pipeline;
    }

    /// <summary>
    /// The added tokens, with ids given as Hugging Face gives them on load: a content the model already has keeps the
    /// model's id; a new one gets the next id after the vocabulary and the tokens added so far.
    /// </summary>
    /// <summary>One past the largest token id a file may use (16M; the largest real vocabularies hold about 260k).</summary>
    private const int MaxTokenId = 16_777_216;

    private List<AddedToken> AddedTokens(JsonObject root, ITokenModel model)
    {
        var list = new List<(int JsonId, AddedToken Token)>();
        var entries = root["added_tokens"] as JsonArray ?? [];
        for (var i = 0; i < entries.Count; i++)
        {
            var field = $"added_tokens[{i}]";
            if (entries[i] is not JsonObject e || String(e, "content", field) is not { } content)
            {
                throw Fail(field, "is not an object with a \"content\" string");
            }

            list.Add((Int(e, "id", field) ?? i, new AddedToken(0, content, Bool(e, "special", field) ?? false, Bool(e, "lstrip", field) ?? false,
                Bool(e, "rstrip", field) ?? false, Bool(e, "single_word", field) ?? false, Bool(e, "normalized", field))));
        }

        var result = new List<AddedToken>(list.Count);
        var byContent = new Dictionary<string, int>(StringComparer.Ordinal);
        var maxAdded = -1;
        var modelSize = model.VocabularySize;
        foreach (var (_, token) in list.OrderBy(t => t.JsonId))
        {
            var id = byContent.TryGetValue(token.Content, out var existing) ? existing
                : model.TokenToId(token.Content) is { } inModel ? inModel
                : maxAdded < 0 ? modelSize
                : maxAdded >= modelSize || modelSize == 0 ? maxAdded + 1 : modelSize;

            maxAdded = Math.Max(maxAdded, id);
            byContent[token.Content] = id;
            result.Add(token with { Id = id });
        }

        return result;
    }

    private ITokenModel BuildModel(JsonObject spec)
    {
        // Files written before model.type existed are told apart by their fields, in the order Hugging Face tries them.
        var type = String(spec, "type", "model.type")
            ?? (spec["merges"] is not null ? "BPE"
                : spec["vocab"] is JsonArray ? "Unigram"
                : spec["continuing_subword_prefix"] is not null || spec["max_input_chars_per_word"] is not null ? "WordPiece"
                : spec["vocab"] is JsonObject ? "WordLevel"
                : throw Fail("model", "has no \"type\" and no fields that tell which model it is"));
        switch (type)
        {
            case "BPE":
                return new BpeModel(Vocab(spec), Merges(spec), String(spec, "unk_token", "model.unk_token"), Bool(spec, "fuse_unk", "model.fuse_unk") ?? false,
                    Bool(spec, "byte_fallback", "model.byte_fallback") ?? false, Bool(spec, "ignore_merges", "model.ignore_merges") ?? false,
                    String(spec, "continuing_subword_prefix", "model.continuing_subword_prefix"), String(spec, "end_of_word_suffix", "model.end_of_word_suffix"), _file);
            case "WordPiece":
                return new WordPieceModel(Vocab(spec), String(spec, "unk_token", "model.unk_token") ?? "[UNK]",
                    String(spec, "continuing_subword_prefix", "model.continuing_subword_prefix") ?? "##",
                    Int(spec, "max_input_chars_per_word", "model.max_input_chars_per_word") ?? 100, _file);
            case "WordLevel":
                return new WordLevelModel(Vocab(spec), String(spec, "unk_token", "model.unk_token"), _file);
            case "Unigram":
                var pieces = new List<(string, double)>();
                var vocab = spec["vocab"] as JsonArray ?? throw Fail("model.vocab", "is not a list of [piece, score] pairs");
                for (var i = 0; i < vocab.Count; i++)
                {
                    if (vocab[i] is not JsonArray { Count: 2 } pair || pair[0] is not JsonValue piece || pair[1] is not JsonValue score ||
                        !piece.TryGetValue<string>(out var p) || !score.TryGetValue<double>(out var s))
                    {
                        throw Fail($"model.vocab[{i}]", "is not a [piece, score] pair");
                    }

                    pieces.Add((p, s));
                }

                var unk = Int(spec, "unk_id", "model.unk_id");
                if (unk is { } u && (u < 0 || u >= pieces.Count))
                {
                    throw Fail("model.unk_id", $"is {u}, outside the vocabulary of {pieces.Count} pieces");
                }

                return new UnigramModel(pieces, unk, Bool(spec, "byte_fallback", "model.byte_fallback") ?? false);
            default:
                throw Fail("model.type", $"is \"{type}\", which OnnxLM does not implement (supported: BPE, WordPiece, WordLevel, Unigram)");
        }
    }

    private Dictionary<string, int> Vocab(JsonObject spec)
    {
        var vocab = spec["vocab"] as JsonObject ?? throw Fail("model.vocab", "is not an object of token → id");
        var result = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        foreach (var (token, id) in vocab)
        {
            if (id is not JsonValue v || !v.TryGetValue<int>(out var value) || value < 0)
            {
                throw Fail($"model.vocab[\"{token}\"]", "is not a non-negative integer id");
            }

            // Ids index arrays the size of the vocabulary: an id far beyond any real vocabulary is a broken file, not a 16 GB allocation.
            if (value >= MaxTokenId) throw Fail($"model.vocab[\"{token}\"]", $"is {value}, beyond the largest id OnnxLM accepts ({MaxTokenId - 1:N0})");

            result[token] = value;
        }

        return result;
    }

    private List<(string, string)> Merges(JsonObject spec)
    {
        var merges = spec["merges"] switch
        {
            null => [],
            JsonArray list => list,
            _ => throw Fail("model.merges", "is not a list of merges"),
        };
        var result = new List<(string, string)>(merges.Count);
        for (var i = 0; i < merges.Count; i++)
        {
            switch (merges[i])
            {
                case JsonArray { Count: 2 } pair when pair[0] is JsonValue a && pair[1] is JsonValue b && a.TryGetValue<string>(out var l) && b.TryGetValue<string>(out var r):
                    result.Add((l, r));
                    break;
                case JsonValue v when v.TryGetValue<string>(out var s) && s.Length > 1 && s.IndexOf(' ', 1) is > 0 and var space:
                    result.Add((s[..space], s[(space + 1)..]));
                    break;
                default:
                    throw Fail($"model.merges[{i}]", "is neither \"left right\" nor [\"left\", \"right\"]");
            }
        }

        return result;
    }

    private INormalizer BuildNormalizer(JsonObject spec, string field)
    {
        var type = String(spec, "type", field + ".type");
        switch (type)
        {
            case "Sequence":
                var steps = spec["normalizers"] as JsonArray ?? throw Fail(field + ".normalizers", "is missing");
                return new SequenceNormalizer(steps.Select((s, i) => BuildNormalizer(s as JsonObject ?? throw Fail($"{field}.normalizers[{i}]", "is not an object"), $"{field}.normalizers[{i}]")).ToArray());
            case "NFC": return new UnicodeNormalizer(NormalizationForm.FormC);
            case "NFD": return new UnicodeNormalizer(NormalizationForm.FormD);
            case "NFKC": return new UnicodeNormalizer(NormalizationForm.FormKC);
            case "NFKD": return new UnicodeNormalizer(NormalizationForm.FormKD);
            case "Lowercase": return CharMapNormalizer.Lowercase;
            case "StripAccents": return CharMapNormalizer.StripAccents;
            case "Nmt": return CharMapNormalizer.Nmt;
            case "ByteLevel": return CharMapNormalizer.ByteLevel;
            case "Strip": return new StripNormalizer(Bool(spec, "strip_left", field) ?? true, Bool(spec, "strip_right", field) ?? true);
            case "Prepend": return new PrependNormalizer(String(spec, "prepend", field + ".prepend") ?? throw Fail(field + ".prepend", "is missing"));
            case "Replace": return Replace(spec, field);
            case "Precompiled":
                var map = String(spec, "precompiled_charsmap", field + ".precompiled_charsmap");
                byte[] bytes;
                try
                {
                    bytes = map is null ? [] : Convert.FromBase64String(map);
                }
                catch (FormatException)
                {
                    throw Fail(field + ".precompiled_charsmap", "is not base64");
                }

                try
                {
                    return new PrecompiledNormalizer(bytes, _file);
                }
                catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or InvalidDataException)
                {
                    throw Fail(field + ".precompiled_charsmap", "is not a valid SentencePiece character map: " + e.Message);
                }

            case "BertNormalizer":
                var lowercase = Bool(spec, "lowercase", field) ?? true;
                var bert = new List<INormalizer>();
                if (Bool(spec, "clean_text", field) ?? true) bert.Add(CharMapNormalizer.BertCleanText);
                if (Bool(spec, "handle_chinese_chars", field) ?? true) bert.Add(CharMapNormalizer.BertChineseChars);
                if (Bool(spec, "strip_accents", field) ?? lowercase)
                {
                    bert.Add(new UnicodeNormalizer(NormalizationForm.FormD));
                    bert.Add(CharMapNormalizer.StripAccents);
                }

                if (lowercase) bert.Add(CharMapNormalizer.Lowercase);
                return new SequenceNormalizer(bert);
            default:
                throw Fail(field + ".type", $"is \"{type}\", a normalizer OnnxLM does not implement (supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Nmt, ByteLevel, Strip, Prepend, Replace, Precompiled, BertNormalizer)");
        }
    }

    private ReplaceNormalizer Replace(JsonObject spec, string field) =>
        new(Pattern(spec, field), String(spec, "content", field + ".content") ?? string.Empty);

    private PatternMatcher Pattern(JsonObject spec, string field)
    {
        var pattern = Object(spec, "pattern") ?? throw Fail(field + ".pattern", "is missing");
        if (String(pattern, "String", field + ".pattern.String") is { } literal)
        {
            return PatternMatcher.Literal(literal);
        }

        var regex = String(pattern, "Regex", field + ".pattern.Regex") ?? throw Fail(field + ".pattern", "has neither \"String\" nor \"Regex\"");
        try
        {
            return PatternMatcher.FromRegex(regex, $"Tokenizer file '{_file}' {field}.pattern.Regex");
        }
        catch (ArgumentException e)
        {
            throw Fail(field + ".pattern.Regex", $"is not a regular expression OnnxLM can run ({e.Message})");
        }
    }

    private IPreTokenizer BuildPreTokenizer(JsonObject spec, string field)
    {
        var type = String(spec, "type", field + ".type");
        switch (type)
        {
            case "Sequence":
                var steps = spec["pretokenizers"] as JsonArray ?? throw Fail(field + ".pretokenizers", "is missing");
                return new SequencePreTokenizer(steps.Select((s, i) => BuildPreTokenizer(s as JsonObject ?? throw Fail($"{field}.pretokenizers[{i}]", "is not an object"), $"{field}.pretokenizers[{i}]")).ToArray());
            case "ByteLevel":
                return new ByteLevelPreTokenizer(Bool(spec, "add_prefix_space", field) ?? true, Bool(spec, "use_regex", field) ?? true);
            case "Metaspace":
                return new MetaspacePreTokenizer(Replacement(spec, field), Scheme(spec, field), Bool(spec, "split", field) ?? true);
            case "Split":
                return SplitPreTokenizer.Pattern(Pattern(spec, field), Behavior(spec, field, SplitBehavior.Isolated), Bool(spec, "invert", field) ?? false);
            case "Punctuation":
                return SplitPreTokenizer.Punctuation(Behavior(spec, field, SplitBehavior.Isolated));
            case "Digits":
                return SplitPreTokenizer.Digits(Bool(spec, "individual_digits", field) ?? false);
            case "Whitespace":
                return SplitPreTokenizer.Whitespace();
            case "WhitespaceSplit":
                return SplitPreTokenizer.WhitespaceSplit();
            case "BertPreTokenizer":
                return SplitPreTokenizer.Bert();
            case "CharDelimiterSplit":
                var delimiter = String(spec, "delimiter", field + ".delimiter");
                return delimiter is { Length: 1 } ? SplitPreTokenizer.CharDelimiter(delimiter[0]) : throw Fail(field + ".delimiter", "is not one character");
            default:
                throw Fail(field + ".type", $"is \"{type}\", a pre-tokenizer OnnxLM does not implement (supported: Sequence, ByteLevel, Metaspace, Split, Punctuation, Digits, Whitespace, WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit)");
        }
    }

    private SplitBehavior Behavior(JsonObject spec, string field, SplitBehavior fallback)
    {
        var name = String(spec, "behavior", field + ".behavior");
        return name is null ? fallback : Enum.TryParse<SplitBehavior>(name, out var b)
            ? b
            : throw Fail(field + ".behavior", $"is \"{name}\" (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
    }

    private char Replacement(JsonObject spec, string field)
    {
        var s = String(spec, "replacement", field + ".replacement") ?? "\u2581";
        return s.Length == 1 ? s[0] : throw Fail(field + ".replacement", "is not one character");
    }

    private PrependScheme Scheme(JsonObject spec, string field)
    {
        // Older files say add_prefix_space instead of prepend_scheme.
        var name = String(spec, "prepend_scheme", field + ".prepend_scheme");
        return name switch
        {
            "always" => PrependScheme.Always,
            "first" => PrependScheme.First,
            "never" => PrependScheme.Never,
            null => Bool(spec, "add_prefix_space", field) == false ? PrependScheme.Never : PrependScheme.Always,
            _ => throw Fail(field + ".prepend_scheme", $"is \"{name}\" (expected always, first or never)"),
        };
    }

    private IPostProcessor? BuildPostProcessor(JsonObject spec, string field, ITokenModel model)
    {
        var type = String(spec, "type", field + ".type");
        switch (type)
        {
            case "Sequence":
                var steps = spec["processors"] as JsonArray ?? throw Fail(field + ".processors", "is missing");
                var built = steps.Select((s, i) => BuildPostProcessor(s as JsonObject ?? throw Fail($"{field}.processors[{i}]", "is not an object"), $"{field}.processors[{i}]", model))
                    .OfType<IPostProcessor>().ToArray();
                return built.Length == 0 ? null : built.Length == 1 ? built[0] : new SequencePostProcessor(built);
            case "ByteLevel":
                return Bool(spec, "trim_offsets", field) ?? true ? new TrimOffsetsPostProcessor(Bool(spec, "add_prefix_space", field) ?? true) : null;
            case "TemplateProcessing":
                return Template(spec, field);
            case "RobertaProcessing" or "BertProcessing":
                var cls = SpecialPair(spec, "cls", field);
                var sep = SpecialPair(spec, "sep", field);
                var template = new TemplatePostProcessor([new([cls.Id], [cls.Token]), new(null, null), new([sep.Id], [sep.Token])]);
                return type == "RobertaProcessing" && (Bool(spec, "trim_offsets", field) ?? true)
                    ? new SequencePostProcessor([new TrimOffsetsPostProcessor(Bool(spec, "add_prefix_space", field) ?? true), template])
                    : template;
            default:
                throw Fail(field + ".type", $"is \"{type}\", a post-processor OnnxLM does not implement (supported: TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence)");
        }
    }

    private (string Token, int Id) SpecialPair(JsonObject spec, string name, string field) =>
        spec[name] is JsonArray { Count: 2 } pair && pair[0] is JsonValue t && t.TryGetValue<string>(out var token) && pair[1] is JsonValue i && i.TryGetValue<int>(out var id)
            ? (token, id)
            : throw Fail($"{field}.{name}", "is not a [token, id] pair");

    private TemplatePostProcessor Template(JsonObject spec, string field)
    {
        var specials = Object(spec, "special_tokens") ?? [];
        var single = spec["single"] as JsonArray ?? throw Fail(field + ".single", "is missing");
        var parts = new List<TemplatePostProcessor.Part>();
        for (var i = 0; i < single.Count; i++)
        {
            var at = $"{field}.single[{i}]";
            if (single[i] is JsonObject item && Object(item, "Sequence") is not null)
            {
                parts.Add(new(null, null));
            }
            else if (single[i] is JsonObject special && Object(special, "SpecialToken") is { } st && String(st, "id", at + ".SpecialToken.id") is { } name)
            {
                var entry = Object(specials, name) ?? throw Fail($"{field}.special_tokens", $"has no entry for \"{name}\" used by {at}");
                var ids = (entry["ids"] as JsonArray ?? throw Fail($"{field}.special_tokens.{name}.ids", "is missing"))
                    .Select(n => n is JsonValue v && v.TryGetValue<int>(out var id) ? id : throw Fail($"{field}.special_tokens.{name}.ids", "is not a list of ids")).ToArray();
                var tokens = (entry["tokens"] as JsonArray)?.Select(n => n is JsonValue v && v.TryGetValue<string>(out var t) ? t : throw Fail($"{field}.special_tokens.{name}.tokens", "is not a list of strings")).ToArray();
                parts.Add(new(ids, tokens is not null && tokens.Length == ids.Length ? tokens : null));
            }
            else
            {
                throw Fail(at, "is neither {\"Sequence\": …} nor {\"SpecialToken\": …}");
            }
        }

        return new TemplatePostProcessor(parts);
    }

    private ITokenDecoder BuildDecoder(JsonObject spec, string field)
    {
        var type = String(spec, "type", field + ".type");
        switch (type)
        {
            case "Sequence":
                var steps = spec["decoders"] as JsonArray ?? throw Fail(field + ".decoders", "is missing");
                return new SequenceDecoder(steps.Select((s, i) => BuildDecoder(s as JsonObject ?? throw Fail($"{field}.decoders[{i}]", "is not an object"), $"{field}.decoders[{i}]")).ToArray());
            case "ByteLevel": return new ByteLevelDecoder();
            case "ByteFallback": return new ByteFallbackDecoder();
            case "Fuse": return new FuseDecoder();
            case "Replace": return new ReplaceDecoder(Replace(spec, field));
            case "Strip":
                var content = String(spec, "content", field + ".content") ?? " ";
                return new StripDecoder(content.Length == 1 ? content[0] : throw Fail(field + ".content", "is not one character"),
                    Int(spec, "start", field + ".start") ?? 0, Int(spec, "stop", field + ".stop") ?? 0);
            case "Metaspace": return new MetaspaceDecoder(Replacement(spec, field), Scheme(spec, field));
            case "WordPiece": return new WordPieceDecoder(String(spec, "prefix", field + ".prefix") ?? "##", Bool(spec, "cleanup", field) ?? true);
            case "BPEDecoder": return new BpeSuffixDecoder(String(spec, "suffix", field + ".suffix") ?? "</w>");
            case "CTC":
                return new CtcDecoder(String(spec, "pad_token", field) ?? "<pad>", String(spec, "word_delimiter_token", field) ?? "|", Bool(spec, "cleanup", field) ?? true);
            default:
                throw Fail(field + ".type", $"is \"{type}\", a decoder OnnxLM does not implement (supported: Sequence, ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, WordPiece, BPEDecoder, CTC)");
        }
    }

    private static JsonObject? Object(JsonObject o, string name) => o[name] as JsonObject;

    private string? String(JsonObject o, string name, string field) => o[name] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => throw Fail(field.EndsWith(name, StringComparison.Ordinal) ? field : $"{field}.{name}", "is not a string"),
    };

    private bool? Bool(JsonObject o, string name, string field) => o[name] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        _ => throw Fail(field.EndsWith(name, StringComparison.Ordinal) ? field : $"{field}.{name}", "is not true or false"),
    };

    private int? Int(JsonObject o, string name, string field) => o[name] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<int>(out var i) => i,
        JsonValue v when v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue => (int)d,
        _ => throw Fail(field.EndsWith(name, StringComparison.Ordinal) ? field : $"{field}.{name}", "is not an integer"),
    };

    private ModelFormatException Fail(string field, string what) => new($"Tokenizer file '{_file}': {field} {what}.", _file);
}
