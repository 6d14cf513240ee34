using System.Text;
using System.Text.Json;

namespace OnnxLM.Gateway;

/// <summary>
/// What a request's route is keyed by: the part of it that stays the same for every turn of a conversation, so that
/// all of them hash to the replica holding its cache.
/// </summary>
/// <remarks>
/// A chat is keyed by the <c>x-conversation-id</c> header, else by <c>user</c>, else by its stable prefix — the system
/// messages and the first user message, which every later turn repeats (the messages before the last user turn grow
/// with each turn, so they cannot key it). A completion is keyed by the first <c>PromptPrefixLength</c> characters (or
/// token ids) of its prompt. Anything else (no body, not JSON, another path) has no key and goes to the least-loaded replica.
/// </remarks>
internal static class RoutingKey
{
    /// <summary>The route key and the conversation name to pass on; both null when the request has no key.</summary>
    public static (string? Key, string? Conversation) Of(string path, string? conversationHeader, ReadOnlySpan<byte> body, int prefixLength)
    {
        if (!string.IsNullOrWhiteSpace(conversationHeader)) return ("c:" + conversationHeader.Trim(), null);
        if (body.IsEmpty) return (null, null);
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 64 });
            using var doc = JsonDocument.ParseValue(ref reader);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return (null, null);
            if (path.EndsWith("/chat/completions", StringComparison.Ordinal)) return Chat(root);
            if (path.EndsWith("/completions", StringComparison.Ordinal)) return (Prompt(root, prefixLength), null);
            return (null, null);
        }
        catch (JsonException)
        {
            return (null, null); // the replica answers the malformed body with its own 400
        }
    }

    private static (string? Key, string? Conversation) Chat(JsonElement root)
    {
        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array) return (null, null);
        var stable = new StringBuilder();
        foreach (var message in messages.EnumerateArray())
        {
            stable.Append(message.GetRawText()).Append('\n');
            if (message.ValueKind == JsonValueKind.Object && message.TryGetProperty("role", out var role) && role.ValueKind == JsonValueKind.String && role.ValueEquals("user")) break;
        }

        if (stable.Length == 0) return (null, null);
        var conversation = "gw-" + Hashing.Hash64(stable.ToString()).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
        var user = root.TryGetProperty("user", out var u) && u.ValueKind == JsonValueKind.String && u.GetString() is { Length: > 0 } name ? name : null;
        return (user is not null ? "u:" + user : "p:" + conversation, conversation);
    }

    private static string? Prompt(JsonElement root, int prefixLength)
    {
        if (!root.TryGetProperty("prompt", out var prompt)) return null;
        // A list of prompts routes by its first.
        if (prompt.ValueKind == JsonValueKind.Array && prompt.GetArrayLength() > 0 && prompt[0].ValueKind is JsonValueKind.String or JsonValueKind.Array) prompt = prompt[0];
        return prompt.ValueKind switch
        {
            JsonValueKind.String => "t:" + (prompt.GetString() is { } text && text.Length > prefixLength ? text[..prefixLength] : prompt.GetString()),
            JsonValueKind.Array => "i:" + string.Join(',', prompt.EnumerateArray().Take(prefixLength).Select(e => e.GetRawText())),
            _ => null,
        };
    }
}
