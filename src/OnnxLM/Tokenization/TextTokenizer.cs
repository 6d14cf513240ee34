using System.Text.Json.Nodes;
using OnnxLM.Tokenization;

namespace OnnxLM;

/// <summary>
/// Turns text into a model's token ids and back, exactly as the model's own tokenizer does. Reads Hugging Face
/// <c>tokenizer.json</c> (BPE, WordPiece, Unigram and WordLevel models with their normalizers, pre-tokenizers,
/// post-processors, decoders and added tokens), SentencePiece <c>.model</c> files, tiktoken files, and GPT-2's
/// <c>vocab.json</c> + <c>merges.txt</c>. Special-token strings in text map to their ids. Thread-safe.
/// </summary>
public sealed class TextTokenizer
{
    private static readonly HashSet<string> LlamaStyleClasses =
        ["LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"];

    private readonly TokenizerPipeline _pipeline;
    private readonly bool _cleanUpSpaces;
    private readonly Dictionary<string, int> _specialTokens;
    private string?[]? _tokenTexts;
    private int _longestPiece;

    private TextTokenizer(TokenizerPipeline pipeline, int? bos, IReadOnlyList<int> eos, int? pad, bool cleanUpSpaces)
    {
        _pipeline = pipeline;
        _cleanUpSpaces = cleanUpSpaces;
        BosTokenId = bos;
        EosTokenIds = eos;
        PadTokenId = pad;
        _specialTokens = pipeline.Added.Tokens.Where(t => t.Special).ToDictionary(t => t.Content, t => t.Id, StringComparer.Ordinal);
        AddBosToken = bos is { } b && pipeline.PostProcessor is { } processor && PrefixOf(processor).Contains(b);
    }

    /// <summary>
    /// Loads the tokenizer files of a model folder: <c>tokenizer.json</c>, else a SentencePiece or tiktoken
    /// <c>tokenizer.model</c> (or another <c>*.model</c> / <c>*.tiktoken</c> file), else <c>vocab.json</c> +
    /// <c>merges.txt</c>; special tokens, BOS/EOS and the clean-up rule from <c>tokenizer_config.json</c>.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="options">Ids from the model configuration, used where the tokenizer files name none; or null.</param>
    /// <exception cref="ModelFormatException">No tokenizer file, or one that is unreadable or of an unsupported kind.</exception>
    public static TextTokenizer FromFolder(string folder, TokenizerOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (!Directory.Exists(folder))
        {
            throw new ModelFormatException(File.Exists(folder)
                ? $"'{folder}' is a file, not a tokenizer folder; use TextTokenizer.FromFile for a single tokenizer file."
                : $"Tokenizer folder '{folder}' does not exist.", folder);
        }

        var file = FindTokenizerFile(folder) ?? throw new ModelFormatException(
            $"No tokenizer in '{folder}': expected tokenizer.json, tokenizer.model (or another *.model / *.tiktoken file), or vocab.json with merges.txt. Found: {ModelConfig.DescribeFolder(folder)}.", folder);
        return Create(file, folder, options);
    }

    /// <summary>
    /// Loads one tokenizer file: a <c>tokenizer.json</c>, a SentencePiece <c>.model</c>, a tiktoken file, or a
    /// <c>vocab.json</c> with <c>merges.txt</c> beside it. A <c>tokenizer_config.json</c> beside it is read too.
    /// </summary>
    /// <exception cref="ModelFormatException">The file is missing, unreadable or of an unsupported kind.</exception>
    public static TextTokenizer FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new ModelFormatException(Directory.Exists(path)
                ? $"'{path}' is a folder; use TextTokenizer.FromFolder for a model folder."
                : $"Tokenizer file '{path}' does not exist.", path);
        }

        return Create(Path.GetFullPath(path), Path.GetDirectoryName(Path.GetFullPath(path))!, null);
    }

    /// <summary>Whether a folder has a file this class can load (what <see cref="FromFolder"/> would read).</summary>
    public static bool HasTokenizerFile(string folder) => Directory.Exists(folder) && FindTokenizerFile(folder) is not null;

    private static string? FindTokenizerFile(string folder)
    {
        string[] preferred = ["tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model"];
        foreach (var name in preferred)
        {
            var candidate = Path.Combine(folder, name);
            if (File.Exists(candidate)) return candidate;
        }

        var other = Directory.EnumerateFiles(folder, "*.model").Concat(Directory.EnumerateFiles(folder, "*.tiktoken")).Order(StringComparer.Ordinal).FirstOrDefault();
        if (other is not null) return other;
        var vocab = Path.Combine(folder, "vocab.json");
        return File.Exists(vocab) && File.Exists(Path.Combine(folder, "merges.txt")) ? vocab : null;
    }

    private static TextTokenizer Create(string file, string folder, TokenizerOptions? options)
    {
        var name = Path.GetFileName(file);
        int? fileBos = null, fileEos = null, filePad = null;
        TokenizerPipeline pipeline;
        if (name.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && name != "vocab.json")
        {
            pipeline = TokenizerJson.Load(file);
        }
        else if (name == "vocab.json")
        {
            pipeline = TokenizerJson.LoadVocabAndMerges(file, Path.Combine(folder, "merges.txt"));
        }
        else if (name.EndsWith(".tiktoken", StringComparison.OrdinalIgnoreCase) || TiktokenFile.IsTiktoken(file))
        {
            pipeline = TiktokenFile.Load(file);
        }
        else
        {
            var sp = SentencePieceModelFile.Read(file);
            pipeline = sp.CreatePipeline();
            (fileBos, fileEos, filePad) = (sp.BosId, sp.EosId, sp.PadId);
            // SentencePiece files have no post-processor; transformers' Llama tokenizer adds BOS unless told not to.
            pipeline.PostProcessor = Template(fileBos, null, pipeline);
        }

        var config = ReadConfig(folder);
        var cleanUp = false;
        if (config is not null)
        {
            fileBos = TokenId(pipeline, config["bos_token"]) ?? fileBos;
            fileEos = TokenId(pipeline, config["eos_token"]) ?? fileEos;
            filePad = TokenId(pipeline, config["pad_token"]) ?? filePad;
            cleanUp = config["clean_up_tokenization_spaces"] is JsonValue c && c.TryGetValue<bool>(out var b) && b;
            var addBos = Flag(config, "add_bos_token");
            var addEos = Flag(config, "add_eos_token");
            var isLlamaStyle = config["tokenizer_class"] is JsonValue cls && cls.TryGetValue<string>(out var className) && LlamaStyleClasses.Contains(className);
            // transformers rebuilds the template of Llama-style tokenizers from these two flags when it loads them.
            if ((isLlamaStyle || !TokenizerPipeline.AddsTokens(pipeline.PostProcessor) && fileBos is not null) && (addBos is not null || addEos is not null))
            {
                var hadBos = pipeline.PostProcessor is not null && fileBos is { } fb && PrefixOf(pipeline.PostProcessor).Contains(fb);
                pipeline.PostProcessor = WithTemplate(pipeline.PostProcessor, Template((addBos ?? hadBos) ? fileBos : null, addEos == true ? fileEos : null, pipeline));
            }
        }

        fileBos ??= pipeline.PostProcessor is { } p ? PrefixOf(p).Cast<int?>().FirstOrDefault() : null;
        var bos = fileBos ?? options?.BosTokenId;
        var eos = fileEos is { } e ? [e] : options?.EosTokenIds ?? [];
        return new TextTokenizer(pipeline, bos, eos, filePad ?? options?.PadTokenId, cleanUp);
    }

    private static JsonObject? ReadConfig(string folder)
    {
        var file = Path.Combine(folder, "tokenizer_config.json");
        return File.Exists(file) ? ModelConfig.ReadJson(file) : null;
    }

    private static bool? Flag(JsonObject config, string name) =>
        config[name] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : null;

    private static TemplatePostProcessor? Template(int? bos, int? eos, TokenizerPipeline pipeline)
    {
        if (bos is null && eos is null)
        {
            return null;
        }

        var parts = new List<TemplatePostProcessor.Part>();
        if (bos is { } b) parts.Add(new([b], [pipeline.TokenToPiece(b)]));
        parts.Add(new(null, null));
        if (eos is { } e) parts.Add(new([e], [pipeline.TokenToPiece(e)]));
        return new TemplatePostProcessor(parts);
    }

    /// <summary>The post-processor with its template replaced (or added after its offset step); null template removes it.</summary>
    private static IPostProcessor? WithTemplate(IPostProcessor? processor, TemplatePostProcessor? template) => processor switch
    {
        null or TemplatePostProcessor => template,
        SequencePostProcessor s => s.Steps.Where(p => p is not TemplatePostProcessor).Append(template).OfType<IPostProcessor>().ToArray() is var steps && steps.Length == 1
            ? steps[0]
            : new SequencePostProcessor(steps),
        _ => template is null ? processor : new SequencePostProcessor([processor, template]),
    };

    private static IEnumerable<int> PrefixOf(IPostProcessor processor) => processor switch
    {
        TemplatePostProcessor t => t.Prefix,
        SequencePostProcessor s => s.Steps.SelectMany(PrefixOf),
        _ => [],
    };

    private static int? TokenId(TokenizerPipeline pipeline, JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => pipeline.PieceToId(s),
        JsonObject o when o["content"] is JsonValue c && c.TryGetValue<string>(out var s) => pipeline.PieceToId(s),
        _ => null,
    };

    /// <summary>Number of ids the tokenizer knows, added tokens included (may differ from the model's logits count).</summary>
    public int VocabularySize => _pipeline.VocabularySize;

    /// <summary>The beginning-of-sequence id, if the tokenizer has one.</summary>
    public int? BosTokenId { get; }

    /// <summary>The end-of-sequence ids.</summary>
    public IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>The padding id, if any.</summary>
    public int? PadTokenId { get; }

    /// <summary>Whether <see cref="Encode(string, bool, CancellationToken)"/> with special tokens puts BOS first (as the tokenizer's post-processor says).</summary>
    public bool AddBosToken { get; }

    /// <summary>The special tokens (added tokens marked special) by their text.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens => _specialTokens;

    /// <summary>
    /// How long one match of a tokenizer regex may run (1 s) when the pattern needs the backtracking engine (lookaround,
    /// backreferences); other patterns run on the non-backtracking engine, linear in the text, with no timeout.
    /// </summary>
    public static readonly TimeSpan RegexMatchTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// With <see cref="MaxGrowthSlack"/>, how far the normalizers and pre-tokenizers may grow a text while it is encoded:
    /// by at most 64 × its length + 4,096 UTF-16 units, all pieces together (NFKD expands a character at most 18-fold,
    /// byte-level writes a character as at most 3).
    /// </summary>
    public const int MaxGrowthFactor = 64;

    /// <summary>The constant part of the growth limit (see <see cref="MaxGrowthFactor"/>): lets short texts gain a prefix or a replacement.</summary>
    public const int MaxGrowthSlack = 4096;

    /// <summary>Encodes text into token ids, as Hugging Face's <c>encode(text, add_special_tokens)</c>.</summary>
    /// <param name="text">The text; special-token strings in it (such as "&lt;s&gt;") become their ids.</param>
    /// <param name="addSpecialTokens">Whether to add what the tokenizer's post-processor adds (BOS for Llama, CLS/SEP for BERT).</param>
    /// <param name="cancellationToken">Stops a long encode; checked per piece and per pre-tokenized word.</param>
    /// <exception cref="TokenizationLimitException">
    /// The tokenizer file's regex ran longer than <see cref="RegexMatchTimeout"/> on one match, or its stages grew the
    /// text past <see cref="MaxGrowthFactor"/> × its length + <see cref="MaxGrowthSlack"/>.
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public int[] Encode(string text, bool addSpecialTokens = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 2);
        _pipeline.Encode(text, addSpecialTokens, ids, cancellationToken);
        return ids.ToArray();
    }

    /// <summary>Encodes text into tokens with their pieces and the span of <paramref name="text"/> each covers.</summary>
    /// <param name="text">The text; special-token strings in it become their ids.</param>
    /// <param name="addSpecialTokens">Whether to add what the tokenizer's post-processor adds.</param>
    /// <param name="cancellationToken">Stops a long encode; checked per piece and per pre-tokenized word.</param>
    /// <exception cref="TokenizationLimitException">As for <see cref="Encode(string, bool, CancellationToken)"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public IReadOnlyList<EncodedToken> EncodeToTokens(string text, bool addSpecialTokens = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        return _pipeline.EncodeToTokens(text, addSpecialTokens, cancellationToken: cancellationToken);
    }

    /// <summary>The number of tokens <see cref="Encode(string, bool, CancellationToken)"/> gives.</summary>
    /// <param name="text">The text.</param>
    /// <param name="addSpecialTokens">Whether to count what the tokenizer's post-processor adds.</param>
    /// <param name="cancellationToken">Stops a long count.</param>
    public int CountTokens(string text, bool addSpecialTokens = true, CancellationToken cancellationToken = default) =>
        Encode(text, addSpecialTokens, cancellationToken).Length;

    /// <summary>
    /// Encodes a prompt for the model. <paramref name="addBos"/> null follows the tokenizer (special tokens added,
    /// never a second BOS when the text already starts with it); true: no other special tokens, BOS first; false: none.
    /// </summary>
    internal int[] EncodeForModel(string text, bool? addBos, CancellationToken cancellationToken = default)
    {
        if (addBos is null)
        {
            var ids = Encode(text, addSpecialTokens: true, cancellationToken);
            return AddBosToken && ids.Length >= 2 && ids[0] == BosTokenId && ids[1] == BosTokenId ? ids[1..] : ids;
        }

        var plain = Encode(text, addSpecialTokens: false, cancellationToken);
        return addBos == true && BosTokenId is { } bos && (plain.Length == 0 || plain[0] != bos) ? [bos, .. plain] : plain;
    }

    /// <summary>Decodes token ids into text, as transformers' <c>decode</c>.</summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="skipSpecialTokens">Whether to leave out special tokens such as BOS and EOS.</param>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false) => Decode(ids, skipSpecialTokens, null);

    /// <summary>Decodes token ids into text, choosing whether spaces before punctuation are cleaned up.</summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="skipSpecialTokens">Whether to leave out special tokens such as BOS and EOS.</param>
    /// <param name="cleanUpTokenizationSpaces">
    /// Whether to remove the spaces transformers' <c>clean_up_tokenization_spaces</c> removes (" ." → ".", " 's" → "'s");
    /// null follows tokenizer_config.json (<see cref="CleansUpTokenizationSpaces"/>). False gives exactly what the
    /// tokenizer.json decoder produces, as Hugging Face's tokenizers library does.
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens, bool? cleanUpTokenizationSpaces)
    {
        var text = _pipeline.Decode(ids, skipSpecialTokens, continuation: false);
        return cleanUpTokenizationSpaces ?? _cleanUpSpaces ? WordPieceDecoder.CleanUp(text, decoderRule: false) : text;
    }

    /// <summary>Whether <see cref="Decode(ReadOnlySpan{int}, bool)"/> cleans up spaces before punctuation (tokenizer_config.json's <c>clean_up_tokenization_spaces</c>).</summary>
    public bool CleansUpTokenizationSpaces => _cleanUpSpaces;

    /// <summary>
    /// The text one token adds when it follows other text (a SentencePiece "▁the" gives " the", not "the"); special tokens
    /// give their content. What a per-token view of scored text should show.
    /// </summary>
    public string TokenText(int id)
    {
        // Cached: scoring asks for the text of every scored token and its alternatives.
        var cache = _tokenTexts ??= new string?[VocabularySize];
        if ((uint)id < (uint)cache.Length)
        {
            return cache[id] ??= _pipeline.Decode([id], skipSpecialTokens: false, continuation: true);
        }

        return _pipeline.Decode([id], skipSpecialTokens: false, continuation: true);
    }

    /// <summary>
    /// The most characters of input one token can stand for: the longest vocabulary piece (a byte-level or SentencePiece
    /// piece has at least one character per input character it covers). Computed once, on first use.
    /// </summary>
    internal int LongestPieceLength
    {
        get
        {
            if (_longestPiece == 0)
            {
                var longest = 1;
                foreach (var piece in _pipeline.Pieces) longest = Math.Max(longest, piece?.Length ?? 0);
                _longestPiece = longest;
            }

            return _longestPiece;
        }
    }

    /// <summary>
    /// The UTF-8 bytes one token adds when it follows other text, including tokens that are only part of a character
    /// (a byte-level piece such as "âĢ", or a byte-fallback "&lt;0xE2&gt;"); null for special tokens and tokens whose bytes cannot be known.
    /// </summary>
    internal byte[]? TokenBytes(int id)
    {
        if (IsSpecialToken(id)) return null;
        var text = TokenText(id);
        if (!text.Contains('\uFFFD')) return System.Text.Encoding.UTF8.GetBytes(text);
        var piece = _pipeline.TokenToPiece(id);
        if (Tokenization.ByteFallbackDecoder.TryParseByte(piece, out var single)) return [single];
        var bytes = new List<byte>(piece.Length);
        return _pipeline.DecodesByteLevel && ByteLevelAlphabet.TryAppendBytes(piece, bytes) ? [.. bytes] : null;
    }

    /// <summary>The vocabulary entry of a token as stored ("Ġthe", "▁the", "&lt;0x0A&gt;").</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is outside the vocabulary.</exception>
    public string TokenToPiece(int id) => _pipeline.TokenToPiece(id);

    /// <summary>The id of a vocabulary entry or added token, or null when there is no such piece.</summary>
    public int? PieceToId(string piece)
    {
        ArgumentNullException.ThrowIfNull(piece);
        return _pipeline.PieceToId(piece);
    }

    /// <summary>Finds a special token by its text ("&lt;|im_end|&gt;").</summary>
    public bool TryGetSpecialTokenId(string content, out int id)
    {
        ArgumentNullException.ThrowIfNull(content);
        return _specialTokens.TryGetValue(content, out id);
    }

    /// <summary>Whether an id is a special token (an added token marked special: BOS, EOS, chat tags).</summary>
    public bool IsSpecialToken(int id) => _pipeline.IsSpecialToken(id);

    /// <summary>The pre-tokenized words of a text and the BPE merges that build each (for <c>onnxlm tokenize --explain</c>).</summary>
    internal List<(string Word, List<(string Left, string Right, int Rank)> Merges)> ExplainMerges(string text) => _pipeline.ExplainMerges(text);

    /// <summary>
    /// How <paramref name="text"/> becomes tokens: word by word, the byte-pair merges in the order they happen (which
    /// pair, its rank; empty for WordPiece/Unigram/WordLevel), then the tokens with ids, pieces and UTF-16 and UTF-8 offsets.
    /// </summary>
    public Explain.TokenizationExplanation Explain(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var words = ExplainMerges(text).Select(w => new Explain.WordMerges(w.Word,
            [.. w.Merges.Select(m => new Explain.MergeStep(m.Left, m.Right, m.Left + m.Right, m.Rank))])).ToList();
        var tokens = EncodeToTokens(text).Select(t => new Explain.ExplainedToken(
            t.Id, t.Piece, text.Substring(t.Start, t.Length), t.Start, t.Length,
            System.Text.Encoding.UTF8.GetByteCount(text.AsSpan(0, t.Start)), System.Text.Encoding.UTF8.GetByteCount(text.AsSpan(t.Start, t.Length)), IsSpecialToken(t.Id))).ToList();
        return new Explain.TokenizationExplanation(text, words, tokens);
    }

    /// <summary>Starts decoding one sequence incrementally, token by token.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);
}
