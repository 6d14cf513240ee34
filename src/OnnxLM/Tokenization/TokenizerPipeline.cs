namespace OnnxLM.Tokenization;

/// <summary>
/// Hugging Face's tokenization pipeline, stage by stage: added tokens are found first (in the original text, then
/// in the normalized rest), every other piece is normalized, pre-tokenized into words and tokenized by the model,
/// and the post-processor adds the special tokens. Decoding maps ids to their strings and runs the decoder chain.
/// Thread-safe once built.
/// </summary>
internal sealed class TokenizerPipeline
{
    private readonly string _source;
    private readonly AddedVocabulary _added;
    private readonly INormalizer? _normalizer;
    private readonly IPreTokenizer? _preTokenizer;
    private IPostProcessor? _postProcessor;
    private readonly ITokenDecoder? _decoder;
    private readonly string?[] _pieces;

    public TokenizerPipeline(string source, ITokenModel model, IEnumerable<AddedToken> added, INormalizer? normalizer,
        IPreTokenizer? preTokenizer, IPostProcessor? postProcessor, ITokenDecoder? decoder)
    {
        _source = source;
        Model = model;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _postProcessor = postProcessor;
        _decoder = decoder;
        try
        {
            _added = new AddedVocabulary(added, normalizer);
        }
        catch (TokenizationLimitException e)
        {
            // Normalizing the added tokens' own text runs the normalizers at load: a runaway one is a broken file.
            throw new ModelFormatException($"Tokenizer file '{source}': normalizing the added tokens went past a limit: {e.Message}", source, e);
        }

        _pieces = new string?[Math.Max(model.VocabularySize, _added.MaxId + 1)];
        for (var id = 0; id < model.VocabularySize; id++)
        {
            _pieces[id] = model.IdToToken(id);
        }

        foreach (var token in _added.Tokens)
        {
            _pieces[token.Id] = token.Content;
        }
    }

    /// <summary>Where the tokenizer was read from, for messages.</summary>
    public string Source => _source;

    public ITokenModel Model { get; }

    public AddedVocabulary Added => _added;

    public IPostProcessor? PostProcessor { get => _postProcessor; set => _postProcessor = value; }

    public int VocabularySize => _pieces.Length;

    /// <summary>Text that becomes an unknown-token id on decode, as SentencePiece writes it (" ⁇ "); null keeps the piece.</summary>
    public string? UnknownSurface { get; init; }

    /// <exception cref="TokenizationLimitException">A regex ran past its match timeout, or the stages grew the text past the limit.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (checked per piece and per word).</exception>
    public void Encode(string text, bool addSpecialTokens, List<int> ids, CancellationToken cancellationToken = default)
    {
        if (!addSpecialTokens || !AddsTokens(_postProcessor))
        {
            // The common case needs no offsets and no token list.
            foreach (var (piece, token) in Split(text, track: false, cancellationToken))
            {
                if (token is not null)
                {
                    ids.Add(token.Id);
                    continue;
                }

                foreach (var word in PreTokenize(piece))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    Model.Tokenize(word.Text, ids, null);
                }
            }

            return;
        }

        foreach (var token in EncodeToTokens(text, addSpecialTokens, track: false, cancellationToken))
        {
            ids.Add(token.Id);
        }
    }

    /// <summary>The pre-tokenized words of <paramref name="text"/> with the BPE merges that build each (empty for other models); added tokens are words without merges.</summary>
    public List<(string Word, List<(string Left, string Right, int Rank)> Merges)> ExplainMerges(string text)
    {
        var words = new List<(string, List<(string, string, int)>)>();
        foreach (var (piece, added) in Split(text, track: false))
        {
            if (added is not null)
            {
                words.Add((added.Content, []));
                continue;
            }

            foreach (var word in PreTokenize(piece))
            {
                words.Add((word.Text, Model is BpeModel bpe ? bpe.ExplainMerges(word.Text) : []));
            }
        }

        return words;
    }

    public List<EncodedToken> EncodeToTokens(string text, bool addSpecialTokens, bool track = true, CancellationToken cancellationToken = default)
    {
        var tokens = new List<EncodedToken>();
        var ids = new List<int>();
        var ends = track ? new List<int>() : null;
        foreach (var (piece, added) in Split(text, track, cancellationToken))
        {
            if (added is not null)
            {
                // The whitespace an lstrip token swallowed is not part of its span.
                var first = 0;
                while (added.LStrip && first < piece.Length - 1 && char.IsWhiteSpace(piece.Text[first])) first++;
                var (s, e) = piece.OriginalRange(first, piece.Length);
                tokens.Add(new EncodedToken(added.Id, added.Content, s, e - s));
                continue;
            }

            foreach (var word in PreTokenize(piece))
            {
                cancellationToken.ThrowIfCancellationRequested();
                ids.Clear();
                ends?.Clear();
                Model.Tokenize(word.Text, ids, ends);
                var start = 0;
                for (var i = 0; i < ids.Count; i++)
                {
                    var end = ends is null ? 0 : ends[i];
                    // A zero-width token (a byte piece before the last one of its character) covers what the next one covers.
                    var spanEnd = end;
                    for (var k = i; ends is not null && spanEnd == start && k + 1 < ids.Count; k++) spanEnd = ends[k + 1];
                    var (s, e) = track ? word.OriginalRange(start, spanEnd) : (0, 0);
                    tokens.Add(new EncodedToken(ids[i], _pieces[ids[i]] ?? string.Empty, s, e - s));
                    start = end;
                }
            }
        }

        _postProcessor?.Process(tokens, addSpecialTokens);
        return tokens;
    }

    /// <summary>Whether a post-processor adds tokens (a template) rather than only adjusting offsets.</summary>
    public static bool AddsTokens(IPostProcessor? processor) => processor switch
    {
        TemplatePostProcessor => true,
        SequencePostProcessor s => s.Steps.Any(AddsTokens),
        _ => false,
    };

    private List<(NormalizedText Text, AddedToken? Token)> Split(string text, bool track, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var budget = new TextBudget(text.Length, _source, cancellationToken);
        var raw = new List<(NormalizedText, AddedToken?)>();
        _added.SplitRaw(NormalizedText.FromOriginal(text, 0, track, budget), raw);
        var result = new List<(NormalizedText, AddedToken?)>(raw.Count);
        foreach (var (piece, token) in raw)
        {
            if (token is not null)
            {
                result.Add((piece, token));
                continue;
            }

            cancellationToken.ThrowIfCancellationRequested();
            var normalized = _normalizer is null ? piece : _normalizer.Normalize(piece);
            _added.SplitNormalized(normalized, result);
        }

        // What the pre-tokenizers add is charged to the same budget, under their own name.
        budget.Phase = "pre_tokenizer";
        return result;
    }

    private List<NormalizedText> PreTokenize(NormalizedText piece)
    {
        // An empty piece has no words: nothing is prepended to it (Metaspace, ByteLevel's prefix space).
        var words = new List<NormalizedText>(piece.Length == 0 ? 0 : 4);
        if (piece.Length == 0)
        {
            return words;
        }

        words.Add(piece);
        _preTokenizer?.PreTokenize(words);
        words.RemoveAll(w => w.Length == 0);
        return words;
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens, bool continuation)
    {
        var tokens = new List<string>(ids.Length);
        foreach (var id in ids)
        {
            var piece = TokenToPiece(id);
            if (skipSpecialTokens && _added.IsSpecial(id))
            {
                continue;
            }

            tokens.Add(piece);
        }

        if (_decoder is null)
        {
            return string.Join(' ', tokens);
        }

        _decoder.Decode(tokens, continuation);
        return string.Concat(tokens);
    }

    /// <summary>Whether the decoder maps byte-level characters ("Ġ", "Ċ") back to bytes (GPT-2-style vocabularies).</summary>
    public bool DecodesByteLevel => _decoder is ByteLevelDecoder || (_decoder is SequenceDecoder sequence && sequence.Steps.Any(s => s is ByteLevelDecoder));

    /// <summary>Every id's piece (null where the vocabulary has a hole).</summary>
    public IReadOnlyList<string?> Pieces => _pieces;

    public string TokenToPiece(int id) =>
        (uint)id < (uint)_pieces.Length && _pieces[id] is { } piece
            ? piece
            : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is not in the tokenizer's vocabulary of {_pieces.Length} ids ({_source}).");

    public int? PieceToId(string piece) => _added.ByContent(piece)?.Id ?? Model.TokenToId(piece);

    public bool IsSpecialToken(int id) => _added.IsSpecial(id);
}
