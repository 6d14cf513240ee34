using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OnnxLM.Chat;

namespace OnnxLM;

/// <summary>
/// A decoder-only language model loaded from a folder: the ONNX graph on ONNX Runtime, its tokenizer and what
/// it is (<see cref="Info"/>). Load it once and share it: every method is thread-safe, each call decodes in its
/// own <see cref="GenerationSession"/>. Dispose it to free the native session.
/// </summary>
public sealed class LanguageModel : IDisposable
{
    /// <summary>Special tokens that end a turn in the chat formats of common instruct models.</summary>
    private static readonly string[] EndOfTurnTokens =
        ["<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|END_OF_TURN_TOKEN|>", "<|end_of_text|>", "<｜end▁of▁sentence｜>", "<|endoftext|>", "</s>"];

    private readonly ModelRuntime _runtime;
    private readonly Lazy<ChatTemplate?> _chatTemplate;
    private readonly Lazy<IReadOnlyList<int>> _endOfTurn;
    private readonly Decoding _decoding;

    private LanguageModel(string folder, ModelRuntime runtime)
    {
        _runtime = runtime;
        _chatTemplate = new(() => ChatTemplate.FromFolder(folder)?.WithDefaultTokens(DefaultTemplateTokens()));
        _endOfTurn = new(() =>
        {
            var ids = new List<int>(Info.EosTokenIds);
            foreach (var token in EndOfTurnTokens)
            {
                if (runtime.HasTokenizer && runtime.Tokenizer.TryGetSpecialTokenId(token, out var id) && !ids.Contains(id)) ids.Add(id);
            }

            return ids;
        });
        _decoding = new Decoding(runtime);
    }

    /// <summary>What the model is and where it runs.</summary>
    public ModelInfo Info => _runtime.Info;

    /// <summary>Whether the model folder has tokenizer files, so that <see cref="Tokenizer"/> and the text overloads can be used.</summary>
    public bool HasTokenizer => _runtime.HasTokenizer;

    /// <summary>The model's tokenizer.</summary>
    /// <exception cref="ModelFormatException">The model folder has no tokenizer files (see <see cref="HasTokenizer"/>).</exception>
    public TextTokenizer Tokenizer => _runtime.Tokenizer;

    /// <summary>The graph, tokenizer, sessions and scheduler under this facade: what the internals run on.</summary>
    internal ModelRuntime Runtime => _runtime;

    /// <summary>The one entrance to decoding: every generation of this model goes through it.</summary>
    internal Decoding Decoding => _decoding;

    /// <summary>
    /// Whether concurrent generations decode together as rows of one batch (continuous batching): <see cref="LanguageModelOptions.MaxBatchSize"/>
    /// is above 1 and the graph and execution provider can batch sequences of different lengths. When false, each generation
    /// decodes alone in a session of its own. Speculative decoding (<see cref="GenerationOptions.Speculation"/>) always decodes alone.
    /// </summary>
    public bool BatchesGenerations => _runtime.Scheduler is not null;

    /// <summary>Whether the model folder has a chat template (tokenizer_config.json's <c>chat_template</c>, chat_template.jinja or .json).</summary>
    /// <exception cref="ModelFormatException">A file naming the template is unreadable.</exception>
    /// <exception cref="TemplateSyntaxException">The template is not valid Jinja.</exception>
    public bool HasChatTemplate => _chatTemplate.Value is not null;

    /// <summary>The model's chat template, or <see cref="ChatTemplate.Plain"/> for a model that has none (see <see cref="HasChatTemplate"/>).</summary>
    /// <exception cref="ModelFormatException">A file naming the template is unreadable.</exception>
    /// <exception cref="TemplateSyntaxException">The template is not valid Jinja.</exception>
    public ChatTemplate ChatTemplate => _chatTemplate.Value ?? ChatTemplate.Plain;

    /// <summary>
    /// The tokens chat generation stops at: the model's EOS ids (config and generation_config.json) and the end-of-turn
    /// tokens of common chat formats that this tokenizer has (<c>&lt;|eot_id|&gt;</c>, <c>&lt;|im_end|&gt;</c>, <c>&lt;|end|&gt;</c>, <c>&lt;end_of_turn&gt;</c>…).
    /// </summary>
    public IReadOnlyList<int> EndOfTurnTokenIds => _endOfTurn.Value;

    /// <summary>The BOS/EOS/UNK/PAD strings for templates whose tokenizer_config.json does not name them.</summary>
    private Dictionary<string, string> DefaultTemplateTokens()
    {
        var tokens = new Dictionary<string, string>();
        if (!HasTokenizer) return tokens;
        var tokenizer = Tokenizer;
        if (tokenizer.BosTokenId is { } bos && bos < tokenizer.VocabularySize) tokens["bos_token"] = tokenizer.TokenToPiece(bos);
        if (tokenizer.EosTokenIds is [var eos, ..] && eos < tokenizer.VocabularySize) tokens["eos_token"] = tokenizer.TokenToPiece(eos);
        return tokens;
    }

    /// <summary>
    /// Renders a conversation into prompt text with the model's chat template, as transformers' <c>apply_chat_template</c>
    /// (<c>tokenize=False</c>). Encode it with <c>addSpecialTokens: false</c>: the template writes the special tokens itself.
    /// </summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">End with the header that starts the assistant's reply.</param>
    /// <param name="tools">Tools the model may call, or null.</param>
    /// <param name="variables">More template variables (<c>enable_thinking</c>…), or null.</param>
    /// <exception cref="TemplateRaisedException">The template refused the conversation, with its own message.</exception>
    /// <param name="cancellationToken">Stops the render with <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="TemplateException">Rendering failed or went past a bound (<see cref="TemplateLimitExceededException"/>).</exception>
    public string ApplyChatTemplate(IEnumerable<ChatMessage> messages, bool addGenerationPrompt = true, IEnumerable<ChatTool>? tools = null,
        IReadOnlyDictionary<string, object?>? variables = null, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return ChatTemplate.Render(messages, addGenerationPrompt, tools, variables, cancellationToken: cancellationToken);
    }

    /// <summary>Renders a conversation with the chat template and tokenizes it, as <c>apply_chat_template(tokenize=True)</c>.</summary>
    public int[] EncodeChat(IEnumerable<ChatMessage> messages, bool addGenerationPrompt = true, IEnumerable<ChatTool>? tools = null,
        IReadOnlyDictionary<string, object?>? variables = null, CancellationToken cancellationToken = default) =>
        EncodeText(ApplyChatTemplate(messages, addGenerationPrompt, tools, variables, cancellationToken), addBos: false, "rendered conversation", cancellationToken);

    /// <summary>Generates the assistant's reply to a conversation, stopping at an end-of-turn token (<see cref="EndOfTurnTokenIds"/>) unless the options name others.</summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="options">Sampling and stopping options; null for greedy decoding of up to 128 tokens.</param>
    /// <param name="tools">Tools the model may call, or null; parse the reply with <see cref="ChatToolCall.Parse"/>.</param>
    /// <param name="cancellationToken">Stops generation with <see cref="OperationCanceledException"/>.</param>
    public Task<GenerationResult> GenerateChatAsync(IEnumerable<ChatMessage> messages, GenerationOptions? options = null, IEnumerable<ChatTool>? tools = null,
        CancellationToken cancellationToken = default)
    {
        var prompt = CheckPrompt(EncodeChat(NonEmpty(messages), addGenerationPrompt: true, tools, cancellationToken: cancellationToken));
        return _decoding.GenerateAsync(prompt, options ?? new GenerationOptions(), EndOfTurnTokenIds, cancellationToken);
    }

    /// <summary>Streams the assistant's reply to a conversation, token by token, stopping at an end-of-turn token.</summary>
    public IAsyncEnumerable<GeneratedToken> GenerateChatStreamingAsync(IEnumerable<ChatMessage> messages, GenerationOptions? options = null,
        IEnumerable<ChatTool>? tools = null, CancellationToken cancellationToken = default) =>
        _decoding.StreamAsync(CheckPrompt(EncodeChat(NonEmpty(messages), addGenerationPrompt: true, tools, cancellationToken: cancellationToken)), options ?? new GenerationOptions(), EndOfTurnTokenIds, cancellationToken);

    /// <summary>
    /// Streams the assistant's reply after a conversation already rendered and encoded (<see cref="EncodeChat"/>, or
    /// <see cref="Encode"/> of text from <see cref="ApplyChatTemplate"/>), token by token, stopping at an end-of-turn token
    /// (<see cref="EndOfTurnTokenIds"/>) unless the options name others.
    /// </summary>
    /// <param name="promptTokenIds">The rendered conversation's tokens, ending with the header that starts the reply.</param>
    /// <param name="options">Sampling and stopping options; null for greedy decoding of up to 128 tokens.</param>
    /// <param name="cancellationToken">Stops generation with <see cref="OperationCanceledException"/>.</param>
    /// <remarks>Its parameters have no defaults (the conversation overload has them): pass null and <see cref="CancellationToken.None"/> explicitly.</remarks>
    /// <exception cref="ArgumentException">The prompt has no tokens.</exception>
    /// <exception cref="ContextLengthExceededException">The prompt leaves no room in the context for a reply.</exception>
    public IAsyncEnumerable<GeneratedToken> GenerateChatStreamingAsync(IReadOnlyList<int> promptTokenIds, GenerationOptions? options, CancellationToken cancellationToken) =>
        _decoding.StreamAsync(CheckPrompt(promptTokenIds), options ?? new GenerationOptions(), EndOfTurnTokenIds, cancellationToken);

    /// <summary>The conversation as a list; a reply to no messages at all is a caller's mistake.</summary>
    private static List<ChatMessage> NonEmpty(IEnumerable<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages.ToList();
        if (list.Count == 0) throw new ArgumentException("The conversation has no messages; give at least one.", nameof(messages));
        return list;
    }

    /// <summary>Views inside the model — tokens, next-token odds, surprise, attention, embeddings, parameters, the cache (see <see cref="Explain.ModelExplainer"/>).</summary>
    public Explain.ModelExplainer Explain()
    {
        ThrowIfDisposed();
        return new Explain.ModelExplainer(this);
    }

    /// <summary>Starts a conversation that keeps its cache between turns (see <see cref="ChatSession"/>).</summary>
    public ChatSession CreateChat(ChatSessionOptions? options = null)
    {
        ThrowIfDisposed();
        return new ChatSession(this, options ?? new ChatSessionOptions());
    }

    /// <summary>
    /// Loads a model folder in the ONNX Runtime GenAI layout (<c>genai_config.json</c>) or the Hugging Face Optimum layout
    /// (<c>config.json</c> + <c>model.onnx</c>/<c>decoder_model_merged.onnx</c>), with its tokenizer files.
    /// </summary>
    /// <param name="path">The model folder.</param>
    /// <param name="options">Execution provider, threads and logging; null for the defaults.</param>
    /// <exception cref="ModelFormatException">Files are missing, unreadable or in a layout OnnxLM does not understand; the message lists what was found.</exception>
    /// <exception cref="ExecutionProviderUnavailableException"><see cref="ExecutionProvider.Cuda"/> was requested and cannot be used.</exception>
    public static LanguageModel Load(string path, LanguageModelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        options ??= new LanguageModelOptions();
        var logger = (ILogger?)options.LoggerFactory?.CreateLogger<LanguageModel>() ?? NullLogger.Instance;
        var folder = Path.GetFullPath(path);
        return new LanguageModel(folder, ModelRuntime.Load(folder, options, logger));
    }

    /// <summary>Starts an empty sequence with its own key/value cache.</summary>
    /// <param name="maxLength">The most tokens the session may hold; null for the model's context length.</param>
    public GenerationSession CreateSession(int? maxLength = null)
    {
        ThrowIfDisposed();
        if (maxLength is { } m)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(m, 1, nameof(maxLength));
            if (m > Info.ContextLength)
            {
                throw new ContextLengthExceededException(m, Info.ContextLength,
                    $"A session of {m} tokens is longer than the model's context length {Info.ContextLength}.");
            }
        }

        return _runtime.CreateSession(maxLength ?? Info.ContextLength);
    }

    /// <summary>Generates text after a prompt and returns it all at once.</summary>
    /// <param name="prompt">The text to continue.</param>
    /// <param name="options">Sampling and stopping options; null for greedy decoding of up to 128 tokens.</param>
    /// <param name="cancellationToken">Stops generation (within one decoding step) with <see cref="OperationCanceledException"/>.</param>
    public async Task<GenerationResult> GenerateAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var ids = EncodePrompt(prompt, options, cancellationToken);
        return await GenerateAsync(ids, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Generates tokens after a prompt given as token ids and returns them all at once.</summary>
    public Task<GenerationResult> GenerateAsync(IReadOnlyList<int> promptTokenIds, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var prompt = CheckPrompt(promptTokenIds);
        return _decoding.GenerateAsync(prompt, options ?? new GenerationOptions(), null, cancellationToken);
    }

    /// <summary>Generates text after a prompt, yielding each token as soon as it is chosen.</summary>
    /// <param name="prompt">The text to continue.</param>
    /// <param name="options">Sampling and stopping options; null for greedy decoding of up to 128 tokens.</param>
    /// <param name="cancellationToken">Stops generation (within one decoding step) with <see cref="OperationCanceledException"/>.</param>
    public IAsyncEnumerable<GeneratedToken> GenerateStreamingAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        // Not cancelled here: a cancelled encode would throw from this call instead of from the enumeration, as callers expect.
        GenerateStreamingAsync(EncodePrompt(prompt, options, CancellationToken.None), options, cancellationToken);

    /// <summary>Generates tokens after a prompt given as token ids, yielding each as soon as it is chosen.</summary>
    public IAsyncEnumerable<GeneratedToken> GenerateStreamingAsync(IReadOnlyList<int> promptTokenIds, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        _decoding.StreamAsync(CheckPrompt(promptTokenIds), options ?? new GenerationOptions(), null, cancellationToken);

    /// <summary>The prompt as an array, checked: not empty, and leaving room in the context for at least one new token.</summary>
    private int[] CheckPrompt(IReadOnlyList<int> promptTokenIds)
    {
        ArgumentNullException.ThrowIfNull(promptTokenIds);
        ThrowIfDisposed();
        if (promptTokenIds.Count == 0)
        {
            throw new ArgumentException("The prompt has no tokens (an empty prompt needs a model with a BOS token).", nameof(promptTokenIds));
        }

        if (promptTokenIds.Count >= Info.ContextLength)
        {
            throw new ContextLengthExceededException(promptTokenIds.Count + 1, Info.ContextLength,
                $"The prompt has {promptTokenIds.Count} tokens; the model's context length {Info.ContextLength} leaves no room to generate.");
        }

        return promptTokenIds.ToArray();
    }

    /// <summary>
    /// The most samples one <see cref="GenerateManyAsync"/> call makes (OpenAI's bound on <c>n</c>): each holds a KV
    /// cache, and all decode at once when batching is on. 128.
    /// </summary>
    public const int MaxSamples = 128;

    /// <summary>
    /// Generates <paramref name="count"/> independent samples from one prompt, prefilled once: each sample forks
    /// the prompt's cache, and with batching on (<see cref="LanguageModelOptions.MaxBatchSize"/>) the samples decode
    /// together as rows of one batch. With <see cref="GenerationOptions.Seed"/> set, sample i uses seed + i.
    /// </summary>
    /// <param name="prompt">The text to continue.</param>
    /// <param name="count">How many samples (1 to <see cref="MaxSamples"/>).</param>
    /// <param name="options">Sampling and stopping options; null for greedy decoding of up to 128 tokens.</param>
    /// <param name="cancellationToken">Stops generation with <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is below 1 or above <see cref="MaxSamples"/>.</exception>
    public async Task<IReadOnlyList<GenerationResult>> GenerateManyAsync(string prompt, int count, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, MaxSamples);
        options ??= new GenerationOptions();
        var ids = CheckPrompt(EncodePrompt(prompt, options, cancellationToken));
        return await _decoding.GenerateManyAsync(ids, count, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Beam search from a text prompt: the best hypotheses by length-normalised log-probability, best first. With batching on
    /// (<see cref="LanguageModelOptions.MaxBatchSize"/>) all beams advance in one model run per step.
    /// </summary>
    public Task<IReadOnlyList<BeamResult>> BeamSearchAsync(string prompt, BeamSearchOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ThrowIfDisposed();
        options ??= new BeamSearchOptions();
        return BeamSearchAsync(EncodeText(prompt, options.AddBosToken, nameof(prompt), cancellationToken), options, cancellationToken);
    }

    /// <summary>Beam search from prompt token ids: the best hypotheses by length-normalised log-probability, best first.</summary>
    public Task<IReadOnlyList<BeamResult>> BeamSearchAsync(IReadOnlyList<int> promptTokenIds, BeamSearchOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(promptTokenIds);
        ThrowIfDisposed();
        options ??= new BeamSearchOptions();
        if (promptTokenIds.Count == 0) throw new ArgumentException("The prompt has no tokens.", nameof(promptTokenIds));
        if (promptTokenIds.Count >= Info.ContextLength)
        {
            throw new ContextLengthExceededException(promptTokenIds.Count + 1, Info.ContextLength, $"The prompt has {promptTokenIds.Count} tokens; the model's context length {Info.ContextLength} leaves no room to generate.");
        }

        var prompt = promptTokenIds.ToArray();
        return Task.Run<IReadOnlyList<BeamResult>>(() => BeamSearch.Run(_runtime, prompt, options, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// Scores a continuation after a context: the log-probability of each continuation token given everything
    /// before it, from one forward pass over context + continuation, with lm-evaluation-harness's tokenization
    /// (trailing whitespace of the context moves to the continuation; continuation tokens are those of
    /// encode(context + continuation) after the encoded context).
    /// </summary>
    public Task<ScoreResult> ScoreAsync(string context, string continuation, ScoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(continuation);
        ThrowIfDisposed();
        options ??= new ScoreOptions();
        CheckTextFits((long)context.Length + continuation.Length, "context and continuation");
        var (contextIds, continuationIds) = Scorer.Tokenize(_runtime, context, continuation, options, cancellationToken);
        return Task.Run(() => Scorer.Score(_runtime, contextIds, continuationIds, options.TopAlternatives, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// Scores many context/continuation pairs (lm-eval semantics as <see cref="ScoreAsync(string, string, ScoreOptions?, CancellationToken)"/>),
    /// running each distinct context once and forking its cache for every continuation (with batching on, see
    /// <see cref="LanguageModelOptions.MaxBatchSize"/>, the continuations are rows of one pass). Results are in request order.
    /// </summary>
    public Task<IReadOnlyList<ScoreResult>> ScoreBatchAsync(IReadOnlyList<ScoreRequest> requests, ScoreOptions? options = null, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        ThrowIfDisposed();
        options ??= new ScoreOptions();
        foreach (var request in requests)
        {
            ArgumentNullException.ThrowIfNull(request, nameof(requests));
            CheckTextFits((long)request.Context.Length + request.Continuation.Length, "context and continuation");
        }

        var pairs = requests.Select(r => Scorer.Tokenize(_runtime, r.Context, r.Continuation, options, cancellationToken)).ToArray();
        return Task.Run<IReadOnlyList<ScoreResult>>(() => Scorer.ScoreBatch(_runtime, pairs, options.TopAlternatives, progress, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// Scores each answer as a continuation of the question (one prefill of the question for all answers) and picks
    /// the best by log-likelihood, per token and per byte, as lm-evaluation-harness's multiple-choice tasks do.
    /// </summary>
    public async Task<MultipleChoiceResult> ScoreChoicesAsync(string context, IReadOnlyList<string> choices, ScoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(choices);
        if (choices.Count == 0) throw new ArgumentException("At least one choice is needed.", nameof(choices));
        var scores = await ScoreBatchAsync(choices.Select(c => new ScoreRequest(context, c)).ToArray(), options, null, cancellationToken).ConfigureAwait(false);
        var trailing = context.Length - context.TrimEnd().Length;
        return new MultipleChoiceResult(choices.Select((c, i) =>
            new ChoiceScore(c, scores[i], System.Text.Encoding.UTF8.GetByteCount(context[^trailing..] + c))).ToArray());
    }

    /// <summary>Scores continuation token ids after context token ids (the context must not be empty).</summary>
    public Task<ScoreResult> ScoreAsync(IReadOnlyList<int> contextTokenIds, IReadOnlyList<int> continuationTokenIds, CancellationToken cancellationToken = default) =>
        ScoreTokenIdsAsync(contextTokenIds, continuationTokenIds, null, cancellationToken);

    /// <summary>
    /// Scores continuation token ids after context token ids (the context must not be empty), reporting the
    /// <see cref="ScoreOptions.TopAlternatives"/> most likely alternatives of every scored token. The ids are scored as
    /// given: <see cref="ScoreOptions.AddBosToken"/> and <see cref="ScoreOptions.PrefixTokenId"/> apply to text only.
    /// </summary>
    /// <param name="contextTokenIds">The context's ids (at least one).</param>
    /// <param name="continuationTokenIds">The ids to score (at least one).</param>
    /// <param name="options">What to report; null for no alternatives.</param>
    /// <param name="cancellationToken">Stops the run with <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="ArgumentException">The context or the continuation is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public Task<ScoreResult> ScoreTokenIdsAsync(IReadOnlyList<int> contextTokenIds, IReadOnlyList<int> continuationTokenIds, ScoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(contextTokenIds);
        ArgumentNullException.ThrowIfNull(continuationTokenIds);
        ThrowIfDisposed();
        if (contextTokenIds.Count == 0)
        {
            throw new ArgumentException("The context needs at least one token (use a BOS/EOS prefix for an empty context).", nameof(contextTokenIds));
        }

        if (continuationTokenIds.Count == 0)
        {
            throw new ArgumentException("The continuation has no tokens to score.", nameof(continuationTokenIds));
        }

        var context = contextTokenIds.ToArray();
        var continuation = continuationTokenIds.ToArray();
        GraphRun.CheckTokenIds(context, Info.VocabularySize, nameof(contextTokenIds));
        GraphRun.CheckTokenIds(continuation, Info.VocabularySize, nameof(continuationTokenIds));
        var alternatives = options?.TopAlternatives ?? 0;
        return Task.Run(() => Scorer.Score(_runtime, context, continuation, alternatives, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// Scores a whole text of any length in windows of the model's context (each token predicted exactly once) and
    /// reports log-probability, perplexity, bits per byte and word perplexity, as lm-evaluation-harness's
    /// <c>loglikelihood_rolling</c> (default) or Hugging Face's strided perplexity (<see cref="PerplexityOptions.Stride"/>).
    /// </summary>
    /// <param name="text">The text; encoded without BOS and conditioned on the prefix token.</param>
    /// <param name="options">Window, stride and prefix token; null for the defaults.</param>
    /// <param name="progress">Receives the fraction of tokens scored after each window.</param>
    /// <param name="cancellationToken">Stops between (and inside) windows.</param>
    public Task<PerplexityResult> ScorePerplexityAsync(string text, PerplexityOptions? options = null, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        ThrowIfDisposed();
        options ??= new PerplexityOptions();
        var tokens = Tokenizer.Encode(text, addSpecialTokens: false);
        if (tokens.Length == 0)
        {
            throw new ArgumentException("The text has no tokens to score.", nameof(text));
        }

        var window = options.WindowLength ?? PerplexityOptions.DefaultWindowLength(Info.ContextLength);
        if (window > Info.ContextLength)
        {
            throw new ContextLengthExceededException(window, Info.ContextLength, $"WindowLength {window} is longer than the model's context length {Info.ContextLength}.");
        }

        var stride = options.Stride ?? window;
        if (stride > window)
        {
            throw new ArgumentOutOfRangeException(nameof(options), stride, $"Stride {stride} is larger than the window {window}.");
        }

        var prefix = options.PrefixTokenId ?? Info.BosTokenId ?? Tokenizer.BosTokenId
            ?? (Info.EosTokenIds.Count > 0 ? Info.EosTokenIds[0] : throw new InvalidOperationException("The model has neither BOS nor EOS; set PerplexityOptions.PrefixTokenId."));
        var bytes = System.Text.Encoding.UTF8.GetByteCount(text);
        var words = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
        return Task.Run(() =>
        {
            var (logProb, windows) = Scorer.Rolling(_runtime, prefix, tokens, window, stride, progress, cancellationToken);
            return new PerplexityResult(logProb, tokens.Length, bytes, words, windows);
        }, cancellationToken);
    }

    private int[] EncodePrompt(string prompt, GenerationOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ThrowIfDisposed();
        return EncodeText(prompt, options?.AddBosToken, nameof(prompt), cancellationToken);
    }

    /// <summary>
    /// Encodes text as a prompt for this model. Text too long to fit in the context is refused before it is tokenized
    /// (a length check, not the memory and time of tokenizing it): at most the context length × the longest vocabulary
    /// piece × 4 characters. Use it for text from outside (a request's prompt, a conversation rendered with
    /// <see cref="ApplyChatTemplate"/> or another template).
    /// </summary>
    /// <param name="text">The prompt text.</param>
    /// <param name="addBosToken">
    /// Null follows the tokenizer (its special tokens added, never a second BOS when the text already starts with one); true:
    /// BOS first and no other special tokens; false: no special tokens (text from a chat template, which writes them itself).
    /// </param>
    /// <param name="cancellationToken">Stops a long encode with <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="ContextLengthExceededException">The text cannot fit in the model's context; nothing was tokenized.</exception>
    /// <exception cref="ModelFormatException">The model folder has no tokenizer (see <see cref="HasTokenizer"/>).</exception>
    public int[] Encode(string text, bool? addBosToken = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        ThrowIfDisposed();
        return EncodeText(text, addBosToken, "prompt", cancellationToken);
    }

    /// <summary>Encodes prompt text after refusing, without tokenizing, text too long to fit in the context.</summary>
    internal int[] EncodeText(string text, bool? addBos, string what, CancellationToken cancellationToken = default) =>
        _runtime.EncodeText(text, addBos, what, cancellationToken);

    /// <summary>
    /// Refuses, without tokenizing it, text too long to fit in the model's context: more characters than the context
    /// length × the longest vocabulary piece × 4 (a margin for normalizers that shrink text). <see cref="Encode"/> does this
    /// itself; call it before tokenizing text from outside another way (<see cref="TextTokenizer.Encode(string, bool, CancellationToken)"/>),
    /// so that a huge text costs a length check, not the memory and time of tokenizing it.
    /// </summary>
    /// <param name="text">The text.</param>
    /// <exception cref="ContextLengthExceededException">The text cannot fit in the context.</exception>
    /// <exception cref="ModelFormatException">The model folder has no tokenizer (see <see cref="HasTokenizer"/>).</exception>
    public void ThrowIfTextTooLong(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        ThrowIfDisposed();
        CheckTextFits(text.Length, "text");
    }

    internal void CheckTextFits(long characters, string what) => _runtime.CheckTextFits(characters, what);

    internal void ThrowIfDisposed() => _runtime.ThrowIfDisposed();

    /// <summary>
    /// Frees the ONNX Runtime session. Safe from any thread at any time: sessions created from this model are disposed
    /// (a run in flight is stopped and finishes first; its caller gets <see cref="ObjectDisposedException"/>), later
    /// calls get <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose() => _runtime.Dispose();
}
