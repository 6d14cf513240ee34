using System.Text.Json.Nodes;

namespace OnnxLM;

/// <summary>
/// Turns text into a model's token ids and back. Reads Hugging Face <c>tokenizer.json</c> (byte-level BPE as in
/// GPT-2, SentencePiece-style BPE as in Llama), SentencePiece <c>tokenizer.model</c> (through Microsoft.ML.Tokenizers)
/// and GPT-2's <c>vocab.json</c> + <c>merges.txt</c>. Special-token strings in text map to their ids. Thread-safe.
/// </summary>
public sealed class TextTokenizer
{
    private readonly ITokenizerBackend _backend;

    private TextTokenizer(ITokenizerBackend backend, int? bos, IReadOnlyList<int> eos, int? pad, bool addBos)
    {
        _backend = backend;
        BosTokenId = bos;
        EosTokenIds = eos;
        PadTokenId = pad;
        AddBosToken = addBos && bos is not null;
    }

    /// <summary>
    /// Loads the tokenizer files of a model folder: <c>tokenizer.json</c>, else <c>tokenizer.model</c>, else
    /// <c>vocab.json</c> + <c>merges.txt</c>; special tokens and BOS handling from <c>tokenizer_config.json</c>.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="options">Overrides from the model configuration (BOS/EOS ids), or null.</param>
    /// <exception cref="ModelFormatException">No tokenizer file, or one that is unreadable or of an unsupported kind.</exception>
    public static TextTokenizer FromFolder(string folder, TokenizerOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (!Directory.Exists(folder))
        {
            throw new ModelFormatException($"Tokenizer folder '{folder}' does not exist.", folder);
        }

        ITokenizerBackend backend;
        int? fileBos = null;
        int? fileEos = null;
        var json = Path.Combine(folder, "tokenizer.json");
        var model = Path.Combine(folder, "tokenizer.model");
        var vocab = Path.Combine(folder, "vocab.json");
        var merges = Path.Combine(folder, "merges.txt");
        if (File.Exists(json))
        {
            backend = HfBpeTokenizer.FromTokenizerJson(json);
        }
        else if (File.Exists(model))
        {
            var sp = new SentencePieceBackend(model);
            (backend, fileBos, fileEos) = (sp, sp.BosTokenId, sp.EosTokenId);
        }
        else if (File.Exists(vocab) && File.Exists(merges))
        {
            backend = HfBpeTokenizer.FromVocabAndMerges(vocab, merges);
        }
        else
        {
            throw new ModelFormatException(
                $"No tokenizer in '{folder}': expected tokenizer.json, tokenizer.model, or vocab.json with merges.txt. Found: {ModelConfig.DescribeFolder(folder)}.", folder);
        }

        // tokenizer_config.json names BOS/EOS by string and says whether BOS is added.
        bool? configAddBos = null;
        var configFile = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(configFile))
        {
            var config = ModelConfig.ReadJson(configFile);
            configAddBos = config["add_bos_token"] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : null;
            fileBos ??= TokenId(backend, config["bos_token"]);
            fileEos ??= TokenId(backend, config["eos_token"]);
        }

        var bos = options?.BosTokenId ?? fileBos;
        var eos = options?.EosTokenIds ?? (fileEos is { } e ? [e] : []);
        var addBos = options?.AddBosToken ?? configAddBos ?? backend.AddsBosByDefault;
        return new TextTokenizer(backend, bos, eos, options?.PadTokenId, addBos);
    }

    private static int? TokenId(ITokenizerBackend backend, JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => backend.PieceToId(s),
        JsonObject o when o["content"] is JsonValue c && c.TryGetValue<string>(out var s) => backend.PieceToId(s),
        _ => null,
    };

    /// <summary>Number of ids the tokenizer knows (may differ from the model's logits count).</summary>
    public int VocabularySize => _backend.VocabularySize;

    /// <summary>The beginning-of-sequence id, if the model has one.</summary>
    public int? BosTokenId { get; }

    /// <summary>The end-of-sequence ids.</summary>
    public IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>The padding id, if any.</summary>
    public int? PadTokenId { get; }

    /// <summary>Whether <see cref="Encode(string, bool?)"/> puts BOS first by default.</summary>
    public bool AddBosToken { get; }

    /// <summary>Encodes text into token ids.</summary>
    /// <param name="text">The text; special-token strings in it (such as "&lt;s&gt;") become their ids.</param>
    /// <param name="addBos">Whether to put BOS first; null follows <see cref="AddBosToken"/>.</param>
    public int[] Encode(string text, bool? addBos = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 2);
        if ((addBos ?? AddBosToken) && BosTokenId is { } bos)
        {
            ids.Add(bos);
        }

        _backend.Encode(text, ids);
        return ids.ToArray();
    }

    /// <summary>Decodes token ids into text.</summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="skipSpecialTokens">Whether to leave out special tokens such as BOS and EOS.</param>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false) => _backend.Decode(ids, skipSpecialTokens);

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
            return cache[id] ??= _backend.Decode([id], skipSpecialTokens: false, continuation: true);
        }

        return _backend.Decode([id], skipSpecialTokens: false, continuation: true);
    }

    private string?[]? _tokenTexts;

    /// <summary>The vocabulary entry of a token as stored ("Ġthe", "▁the", "&lt;0x0A&gt;").</summary>
    public string TokenToPiece(int id) => _backend.TokenToPiece(id);

    /// <summary>The id of a vocabulary entry, or null when the vocabulary has no such piece.</summary>
    public int? PieceToId(string piece)
    {
        ArgumentNullException.ThrowIfNull(piece);
        return _backend.PieceToId(piece);
    }

    /// <summary>Whether an id is a special token (BOS, EOS, unknown, or an added token marked special).</summary>
    public bool IsSpecialToken(int id) => _backend.IsSpecialToken(id);

    /// <summary>Starts decoding one sequence incrementally, token by token.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);
}
