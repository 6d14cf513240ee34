using System.Security.Cryptography;
using System.Text.Json;

namespace OnnxLM.Chat;

/// <summary>
/// Finds the tool calls in what a model wrote, in the formats instruct models are trained on:
/// Hermes / Qwen <c>&lt;tool_call&gt;{"name", "arguments"}&lt;/tool_call&gt;</c> blocks, Mistral's <c>[TOOL_CALLS]</c>
/// followed by a JSON list or by <c>name[ARGS]{…}</c>, and a reply that is itself a JSON call or list of calls
/// (Llama 3.1's <c>{"name", "parameters"}</c>, after <c>&lt;|python_tag|&gt;</c> or with the special tokens skipped).
/// Text that does not parse as a call stays content; nothing throws. Public as <see cref="ChatToolCall.Parse"/>.
/// </summary>
internal static class ToolCallParser
{
    private const string HermesOpen = "<tool_call>";
    private const string HermesClose = "</tool_call>";
    private const string MistralMarker = "[TOOL_CALLS]";
    private const string MistralArgs = "[ARGS]";
    private const string PythonTag = "<|python_tag|>";

    /// <summary>Splits a reply into its text and its tool calls.</summary>
    /// <param name="text">The model's reply, decoded.</param>
    /// <returns>The reply without tool-call markup (trimmed when calls were found), and the calls in order.</returns>
    public static (string Content, IReadOnlyList<ChatToolCall> Calls) Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var calls = new List<ChatToolCall>();
        if (text.Contains(HermesOpen, StringComparison.Ordinal))
        {
            var content = new System.Text.StringBuilder();
            var pos = 0;
            while (true)
            {
                var open = text.IndexOf(HermesOpen, pos, StringComparison.Ordinal);
                if (open < 0) break;
                var bodyStart = open + HermesOpen.Length;
                var close = text.IndexOf(HermesClose, bodyStart, StringComparison.Ordinal);
                var body = close < 0 ? text[bodyStart..] : text[bodyStart..close];
                var end = close < 0 ? text.Length : close + HermesClose.Length;
                content.Append(text, pos, open - pos);
                if (!TryReadCalls(body, calls)) content.Append(text, open, end - open); // not a call: keep it as text
                pos = end;
            }

            content.Append(text, pos, text.Length - pos);
            return calls.Count > 0 ? (content.ToString().Trim(), calls) : (text, calls);
        }

        var marker = text.IndexOf(MistralMarker, StringComparison.Ordinal);
        if (marker >= 0)
        {
            var rest = text[(marker + MistralMarker.Length)..];
            if (TryReadCalls(rest, calls) || TryReadMistralArgs(rest, calls))
            {
                return (text[..marker].Trim(), calls);
            }

            return (text, []);
        }

        var json = text.Replace(PythonTag, "", StringComparison.Ordinal);
        return TryReadCalls(json, calls) ? ("", calls) : (text, []);
    }

    /// <summary><c>name[ARGS]{json}</c>, repeated (Mistral's tokenizer v11 format).</summary>
    private static bool TryReadMistralArgs(string text, List<ChatToolCall> calls)
    {
        var found = new List<ChatToolCall>();
        foreach (var part in text.Split(MistralMarker))
        {
            var args = part.IndexOf(MistralArgs, StringComparison.Ordinal);
            if (args <= 0) return false;
            var name = part[..args].Trim();
            if (name.Length == 0 || !TryParseJson(part[(args + MistralArgs.Length)..], out var arguments) || arguments.ValueKind != JsonValueKind.Object) return false;
            found.Add(new ChatToolCall(name, arguments, NewId()));
        }

        calls.AddRange(found);
        return found.Count > 0;
    }

    /// <summary>A JSON call object or a list of them; arguments under "arguments" or "parameters", an object or a JSON string of one.</summary>
    private static bool TryReadCalls(string text, List<ChatToolCall> calls)
    {
        if (!TryParseJson(text, out var root)) return false;
        var items = root.ValueKind == JsonValueKind.Array ? root.EnumerateArray().ToList() : [root];
        var found = new List<ChatToolCall>();
        foreach (var item in items)
        {
            if (item.ValueKind != JsonValueKind.Object) return false;
            var call = item.TryGetProperty("function", out var function) && function.ValueKind == JsonValueKind.Object ? function : item;
            if (!call.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String) return false;
            JsonElement arguments;
            if (call.TryGetProperty("arguments", out var a) || call.TryGetProperty("parameters", out a))
            {
                if (a.ValueKind == JsonValueKind.String && TryParseJson(a.GetString()!, out var parsed)) a = parsed;
                if (a.ValueKind != JsonValueKind.Object) return false;
                arguments = a;
            }
            else
            {
                arguments = JsonDocument.Parse("{}").RootElement.Clone();
            }

            var id = item.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString() : NewId();
            found.Add(new ChatToolCall(name.GetString()!, arguments, id));
        }

        calls.AddRange(found);
        return found.Count > 0;
    }

    private static bool TryParseJson(string text, out JsonElement element)
    {
        element = default;
        text = text.Trim();
        if (text.Length == 0 || text[0] is not ('{' or '[')) return false;
        try
        {
            using var doc = JsonDocument.Parse(text);
            element = doc.RootElement.Clone();
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>A call id of 9 letters and digits (the form Mistral's templates insist on).</summary>
    internal static string NewId() => RandomNumberGenerator.GetString("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 9);
}
