namespace OnnxLM.Hosting;

/// <summary>
/// Idle sessions of recent conversations, least recently used last. A request takes the session whose tokens share
/// the longest prefix with its prompt (or the one of its ConversationId), so a conversation that continues reuses
/// its cache; a session in use belongs to one request only. A session kept for a named conversation stays its own until
/// evicted: another request takes it only by that name, so that a new conversation sharing a system prompt with it does
/// not take it away from the conversation's next turn.
/// </summary>
internal sealed class SessionPool(int capacity) : IDisposable
{
    private readonly Lock _lock = new();
    private readonly LinkedList<(GenerationSession Session, string? ConversationId)> _idle = [];
    private bool _disposed;

    public GenerationSession Rent(LanguageModel model, ReadOnlySpan<int> prompt, string? conversationId)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            LinkedListNode<(GenerationSession Session, string? ConversationId)>? best = null;
            var bestCommon = 0;
            for (var node = _idle.First; node is not null; node = node.Next)
            {
                if (conversationId is not null && node.Value.ConversationId == conversationId)
                {
                    best = node;
                    break;
                }

                if (node.Value.ConversationId is not null) continue;
                var common = node.Value.Session.Tokens.CommonPrefixLength(prompt);
                if (common > bestCommon) (best, bestCommon) = (node, common);
            }

            if (best is not null)
            {
                _idle.Remove(best);
                return best.Value.Session;
            }
        }

        return model.CreateSession();
    }

    public void Return(GenerationSession session, string? conversationId)
    {
        GenerationSession? evicted = null;
        lock (_lock)
        {
            if (_disposed || capacity == 0)
            {
                evicted = session;
            }
            else
            {
                _idle.AddFirst((session, conversationId));
                if (_idle.Count > capacity)
                {
                    evicted = _idle.Last!.Value.Session;
                    _idle.RemoveLast();
                }
            }
        }

        evicted?.Dispose();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var (session, _) in _idle) session.Dispose();
            _idle.Clear();
        }
    }
}
