using System.Runtime.CompilerServices;

namespace OnnxLM.Chat;

/// <summary>
/// A conversation that keeps its key/value cache between turns. Each turn renders the whole conversation with the
/// model's chat template, keeps the longest token prefix the cache already holds, and runs only the tokens after it,
/// so a reply costs the new message, not the history. One turn at a time; dispose it to free the cache.
/// </summary>
public sealed class ChatSession : IDisposable
{
    private readonly LanguageModel _model;
    private readonly List<ChatMessage> _messages = [];
    private GenerationSession? _session;
    private int _busy;
    private bool _disposed;

    internal ChatSession(LanguageModel model, ChatSessionOptions options)
    {
        _model = model;
        Options = options;
        if (options.SystemPrompt is { } system) _messages.Add(ChatMessage.System(system));
    }

    /// <summary>The settings this conversation was created with.</summary>
    public ChatSessionOptions Options { get; }

    /// <summary>The conversation so far, replies included.</summary>
    public IReadOnlyList<ChatMessage> Messages => _messages;

    /// <summary>Tokens held in the cache (the last rendered conversation and the reply after it).</summary>
    public int CachedTokenCount => _session?.Length ?? 0;

    /// <summary>The last turn's reply, or null before the first.</summary>
    public ChatReply? LastReply { get; private set; }

    /// <summary>Adds a message without replying (a tool's result, an earlier exchange to resume from).</summary>
    public void Add(ChatMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        using var _ = Enter();
        _messages.Add(message);
    }

    /// <summary>Adds a user message and generates the assistant's reply.</summary>
    /// <exception cref="ContextLengthExceededException">The conversation no longer fits (with <see cref="ChatOverflow.Throw"/>); the message is not kept.</exception>
    /// <exception cref="TemplateException">The chat template refused the conversation.</exception>
    public Task<ChatReply> SendAsync(string userMessage, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        SendAsync(ChatMessage.User(userMessage ?? throw new ArgumentNullException(nameof(userMessage))), options, cancellationToken);

    /// <summary>Adds a message (user, or a tool's result) and generates the assistant's reply.</summary>
    public async Task<ChatReply> SendAsync(ChatMessage message, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        await foreach (var _ in SendStreamingAsync(message, options, cancellationToken).ConfigureAwait(false))
        {
        }

        return LastReply!;
    }

    /// <summary>Adds a user message and streams the assistant's reply; <see cref="LastReply"/> has the whole of it afterwards.</summary>
    public IAsyncEnumerable<GeneratedToken> SendStreamingAsync(string userMessage, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        SendStreamingAsync(ChatMessage.User(userMessage ?? throw new ArgumentNullException(nameof(userMessage))), options, cancellationToken);

    /// <summary>Adds a message and streams the assistant's reply; <see cref="LastReply"/> has the whole of it afterwards.</summary>
    public async IAsyncEnumerable<GeneratedToken> SendStreamingAsync(ChatMessage message, GenerationOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        options ??= new GenerationOptions();
        using var _ = Enter();
        _messages.Add(message);
        int[] prompt;
        int reused;
        IAsyncEnumerable<GeneratedToken> reply;
        var completed = false;
        try
        {
            prompt = Fit(cancellationToken);
            _session ??= _model.CreateSession();
            reply = Decoding.StreamInSession(_session, prompt, options, _model.EndOfTurnTokenIds, out reused, cancellationToken);
        }
        catch
        {
            _messages.RemoveAt(_messages.Count - 1);
            throw;
        }

        var tokens = new List<GeneratedToken>();
        try
        {
            await foreach (var token in reply.ConfigureAwait(false))
            {
                tokens.Add(token);
                yield return token;
            }

            completed = true;
        }
        finally
        {
            if (!completed)
            {
                _messages.RemoveAt(_messages.Count - 1); // a cancelled or failed turn leaves the conversation as it was
            }

            _session?.Park(); // between turns the session holds its cache only
        }

        var result = Generator.ToResult(tokens, prompt.Length);
        var (content, calls) = Options.Tools.Count > 0 ? ToolCallParser.Parse(result.Text) : (result.Text, []);
        _messages.Add(ChatMessage.Assistant(calls.Count > 0 ? content : result.Text, [.. calls]));
        LastReply = new ChatReply(content, calls, result, prompt.Length, reused);
    }

    /// <summary>The rendered conversation's tokens, dropping the oldest turns first when allowed and needed.</summary>
    private int[] Fit(CancellationToken cancellationToken)
    {
        var limit = _model.Info.ContextLength - Options.ReservedReplyTokens;
        while (true)
        {
            var ids = Render(cancellationToken);
            if (ids.Length <= limit)
            {
                if (ids.Length == 0) throw new InvalidOperationException("The chat template rendered the conversation as no tokens.");
                return ids;
            }

            var oldest = _messages.FindIndex(m => m.Role != "system");
            if (Options.Overflow != ChatOverflow.DropOldestTurns || oldest < 0 || oldest >= _messages.Count - 1)
            {
                throw new ContextLengthExceededException(ids.Length + Options.ReservedReplyTokens, _model.Info.ContextLength,
                    $"The conversation renders as {ids.Length} tokens; with {Options.ReservedReplyTokens} kept for the reply that passes the model's context length {_model.Info.ContextLength}" +
                    (Options.Overflow == ChatOverflow.DropOldestTurns ? ", even with only the system messages and the newest message left." : ". Set ChatSessionOptions.Overflow to DropOldestTurns to drop old turns."));
            }

            // Drop the oldest turn: that message and the replies up to the next user message.
            var next = _messages.FindIndex(oldest + 1, m => m.Role == "user");
            _messages.RemoveRange(oldest, (next < 0 || next == _messages.Count - 1 ? _messages.Count - 1 : next) - oldest);
        }
    }

    private int[] Render(CancellationToken cancellationToken) => _model.EncodeText(
        // No tools offered renders as transformers' tools=None, not as an empty list (which would pick a tool_use template).
        _model.ChatTemplate.Render(_messages, addGenerationPrompt: true, Options.Tools.Count > 0 ? Options.Tools : null,
            (IReadOnlyDictionary<string, object?>)Options.TemplateVariables, cancellationToken: cancellationToken),
        addBos: false, "rendered conversation", cancellationToken);

    private Scope Enter()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            throw new InvalidOperationException("This ChatSession is already running a turn; a conversation takes one turn at a time.");
        }

        return new Scope(this);
    }

    private readonly struct Scope(ChatSession chat) : IDisposable
    {
        public void Dispose() => Volatile.Write(ref chat._busy, 0);
    }

    /// <summary>Frees the conversation's cache.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _session?.Dispose();
        _session = null;
    }
}
