using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace OnnxLM.Server;

/// <summary>
/// A JSON object from a request — the body or an object nested in it — with typed field readers that know the field's
/// path (<c>messages[2].tool_calls[0].function.name</c>) and fail as 400 errors naming it.
/// </summary>
/// <remarks>
/// Every read of request JSON goes through these readers, so a wrongly typed value anywhere in a request is a 400 with the
/// field's path as <c>param</c>, never an exception from <see cref="JsonElement"/> that escapes as a 500.
/// </remarks>
internal sealed class RequestBody
{
    private RequestBody(JsonElement root, string path)
    {
        Root = root;
        Path = path;
    }

    /// <summary>The JSON object.</summary>
    public JsonElement Root { get; }

    /// <summary>Where the object is in the request: empty for the body itself.</summary>
    public string Path { get; }

    private const int MaxPresize = 64 << 20;

    /// <summary>Reads the request body as a JSON object: invalid UTF-8, invalid JSON or a non-object are 400s.</summary>
    public static async Task<RequestBody> ReadAsync(HttpRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        // The body is buffered (Kestrel has already bounded it by MaxRequestBodyBytes) so that its UTF-8 can be checked
        // whole: JsonDocument accepts invalid UTF-8 inside strings and only fails when a string is read.
        // Sized from Content-Length (which Kestrel has checked against the limit) so that a large body is one buffer, not
        // the chain of doublings a growing stream leaves behind; the document then reads that buffer in place, for the
        // request's lifetime, instead of copying it.
        var expected = request.ContentLength is long length and > 0 ? (int)Math.Min(length, MaxPresize) : 0;
        var buffer = new MemoryStream(expected);
        await request.Body.CopyToAsync(buffer, ct);
        if (buffer.Length >= LargeBodyMemory.Threshold)
        {
            request.HttpContext.Response.OnCompleted(static () =>
            {
                LargeBodyMemory.Released();
                return Task.CompletedTask;
            });
        }

        var bytes = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        if (!System.Text.Unicode.Utf8.IsValid(bytes.Span)) throw ApiException.BadRequest("The request body is not valid UTF-8.");
        try
        {
            var doc = JsonDocument.Parse(bytes);
            request.HttpContext.Response.RegisterForDispose(doc);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest($"The request body must be a JSON object; got {Kind(doc.RootElement)}.");
            return new RequestBody(doc.RootElement, "");
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"The request body is not valid JSON: {e.Message}");
        }
    }

    /// <summary>The path of the field <paramref name="name"/> of this object.</summary>
    public string At(string name) => Path.Length == 0 ? name : $"{Path}.{name}";

    /// <summary>Whether the field is present and not null.</summary>
    public bool Has(string name) => Get(name) is not null;

    /// <summary>The field's value, or null when it is missing or JSON null.</summary>
    public JsonElement? Get(string name) => Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    /// <summary>A string field, or null when missing.</summary>
    public string? String(string name) => Get(name) is { } v ? Text(v, At(name)) : null;

    /// <summary>A string field that must be present.</summary>
    public string RequiredString(string name) => String(name) ?? throw ApiException.BadRequest($"'{At(name)}' is required.", At(name));

    /// <summary>A boolean field, or <paramref name="fallback"/> when missing.</summary>
    public bool Bool(string name, bool fallback = false) => Get(name) switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { } v => throw Wrong(At(name), "true or false", v),
    };

    /// <summary>An integer field within [<paramref name="min"/>, <paramref name="max"/>], or null when missing.</summary>
    public int? Int(string name, int min = int.MinValue, int max = int.MaxValue) => Get(name) is { } v ? Integer(v, At(name), min, max) : null;

    /// <summary>A 64-bit integer field, or null when missing.</summary>
    public long? Long(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l) ? l : throw Wrong(At(name), "an integer", v);
    }

    /// <summary>A finite number field within [<paramref name="min"/>, <paramref name="max"/>], or null when missing.</summary>
    public float? Float(string name, float min = float.MinValue, float max = float.MaxValue) =>
        Get(name) is { } v ? Number(v, At(name), min, max) : null;

    /// <summary><paramref name="value"/> as a finite number within [<paramref name="min"/>, <paramref name="max"/>] at <paramref name="at"/>.</summary>
    public static float Number(JsonElement value, string at, float min = float.MinValue, float max = float.MaxValue)
    {
        if (value.ValueKind != JsonValueKind.Number) throw Wrong(at, "a number", value);
        // Read as double and range-checked before narrowing: JsonElement.GetSingle throws on a literal beyond float's range (1e40).
        if (!value.TryGetDouble(out var d) || !double.IsFinite(d) || d < min || d > max)
        {
            throw ApiException.BadRequest($"'{at}' must be {Range(min, max)}; got {value.GetRawText()}.", at);
        }

        return (float)d;
    }

    /// <summary>A field that is a string or a list of strings; empty when missing.</summary>
    public List<string> StringOrList(string name)
    {
        var at = At(name);
        switch (Get(name))
        {
            case null: return [];
            case { ValueKind: JsonValueKind.String } s: return [Text(s, at)];
            case { ValueKind: JsonValueKind.Array } a:
                var list = new List<string>(a.GetArrayLength());
                var i = 0;
                foreach (var item in a.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String) throw Wrong($"{at}[{i}]", "a string", item);
                    list.Add(Text(item, $"{at}[{i++}]"));
                }

                return list;
            case { } other: throw Wrong(at, "a string or a list of strings", other);
        }
    }

    /// <summary>A nested object field, or null when missing.</summary>
    public RequestBody? Object(string name) => Get(name) is { } v ? Object(v, At(name)) : null;

    /// <summary>A list field, or null when missing.</summary>
    public JsonElement? List(string name) => Get(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Array } a => a,
        { } v => throw Wrong(At(name), "a list", v),
    };

    /// <summary>A list of objects, each with its path (<c>tools[3]</c>); empty when missing.</summary>
    public IEnumerable<RequestBody> Objects(string name)
    {
        if (List(name) is not { } list) yield break;
        var i = 0;
        foreach (var item in list.EnumerateArray()) yield return Object(item, $"{At(name)}[{i++}]");
    }

    /// <summary><paramref name="value"/> as an object at <paramref name="at"/>.</summary>
    public static RequestBody Object(JsonElement value, string at) =>
        value.ValueKind == JsonValueKind.Object ? new RequestBody(value, at) : throw Wrong(at, "an object", value);

    /// <summary><paramref name="value"/> as a string at <paramref name="at"/>; an escaped lone surrogate (<c>"\ud800"</c>) is not text.</summary>
    public static string Text(JsonElement value, string at)
    {
        if (value.ValueKind != JsonValueKind.String) throw Wrong(at, "a string", value);
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw ApiException.BadRequest($"'{at}' is not valid Unicode text (it has an unpaired surrogate escape such as \\ud800).", at);
        }
    }

    /// <summary><paramref name="value"/> as an integer within [<paramref name="min"/>, <paramref name="max"/>] at <paramref name="at"/>.</summary>
    public static int Integer(JsonElement value, string at, int min = int.MinValue, int max = int.MaxValue)
    {
        if (value.ValueKind != JsonValueKind.Number) throw Wrong(at, "an integer", value);
        if (!value.TryGetInt32(out var i))
        {
            // 1.5 is not an integer; 1e20 is one, but out of any range this server takes.
            var whole = value.TryGetDouble(out var d) && Math.Floor(d) == d;
            throw ApiException.BadRequest(whole ? $"'{at}' must be {Range(min, max)}; got {value.GetRawText()}." : $"'{at}' must be an integer; got {value.GetRawText()}.", at);
        }

        if (i < min || i > max) throw ApiException.BadRequest($"'{at}' must be {Range(min, max)}; got {i}.", at);
        return i;
    }

    /// <summary>The 400 for a value of the wrong JSON type.</summary>
    public static ApiException Wrong(string at, string expected, JsonElement found) => ApiException.BadRequest($"'{at}' must be {expected}; got {Kind(found)}.", at);

    private static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => $"the number {value.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => value.GetRawText(),
        _ => "null",
    };

    private static string S<T>(T value) where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);

    private static string Range<T>(T min, T max) where T : System.Numerics.IMinMaxValue<T>, IComparable<T>, IFormattable
    {
        if (min.CompareTo(T.MinValue) == 0) return max.CompareTo(T.MaxValue) == 0 ? "a number" : $"at most {S(max)}";
        return max.CompareTo(T.MaxValue) == 0 ? $"at least {S(min)}" : $"between {S(min)} and {S(max)}";
    }

    /// <summary>
    /// The sampling fields shared by completions and chat, into <paramref name="options"/>; a bad value is a 400 naming the field.
    /// </summary>
    /// <remarks>
    /// Here are checked only the JSON types and the ranges OpenAI's API sets beyond the library's (temperature 0–2,
    /// penalties −2–2, logit_bias −100–100) and this server's cap on new tokens. Every other rule is the
    /// <see cref="GenerationOptions"/> setter's: the value is assigned, and the setter's <see cref="InvalidOptionException"/>
    /// becomes the 400 with its reason, naming the field.
    /// </remarks>
    /// <param name="options">The options to fill.</param>
    /// <param name="defaultMaxTokens">The new tokens when the request gives no <c>max_tokens</c>.</param>
    /// <param name="maxAllowedTokens">The server's cap on <c>max_tokens</c>.</param>
    /// <param name="minTokens">The least <c>max_tokens</c> may be: 0 where scoring the prompt alone is meaningful (completions with echo), else 1.</param>
    public void ApplySampling(GenerationOptions options, int defaultMaxTokens, int maxAllowedTokens, int minTokens)
    {
        ArgumentNullException.ThrowIfNull(options);
        var maxField = Has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        var max = Int(maxField) ?? Math.Min(defaultMaxTokens, maxAllowedTokens);
        if (max > maxAllowedTokens)
        {
            throw ApiException.BadRequest($"'{maxField}' is {max}; this server allows at most {maxAllowedTokens} new tokens per request.", maxField);
        }

        if (max != 0 || minTokens > 0) Set<int>(maxField, max, v => options.MaxNewTokens = v); // 0 where allowed (score the prompt only) is the caller's to handle
        options.Temperature = Float("temperature", 0, 2) ?? 1f;
        Set<float>("top_p", Float("top_p") ?? 1f, v => options.TopP = v);
        Set("top_k", Int("top_k"), v => options.TopK = v);
        Set("min_p", Float("min_p"), v => options.MinP = v);
        Set("typical_p", Float("typical_p"), v => options.TypicalP = v);
        var repetitionField = Has("repetition_penalty") ? "repetition_penalty" : "repeat_penalty";
        Set(repetitionField, Float(repetitionField), v => options.RepetitionPenalty = v);
        options.SetOpenAIPenalties(Float("presence_penalty", -2, 2), Float("frequency_penalty", -2, 2));
        if (Long("seed") is { } seed) options.Seed = GenerationOptions.FoldSeed(seed);
        foreach (var stop in StringOrList("stop")) options.StopSequences.Add(stop);
        ApplyConstraint(options);
        if (Object("logit_bias") is { } bias)
        {
            foreach (var p in bias.Root.EnumerateObject())
            {
                if (!int.TryParse(p.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || p.Value.ValueKind != JsonValueKind.Number)
                {
                    throw ApiException.BadRequest($"'logit_bias' has the entry '{p.Name}'; keys must be token ids and values numbers.", "logit_bias");
                }

                options.LogitBias[id] = Number(p.Value, "logit_bias", -100, 100); // OpenAI's range
            }
        }
    }

    /// <summary>Output constraints by their field: regex / guided_regex (vLLM), grammar (llama.cpp's GBNF), guided_choice (vLLM); at most one.</summary>
    private void ApplyConstraint(GenerationOptions options)
    {
        string[] fields = ["regex", "guided_regex", "grammar", "guided_choice"];
        var given = fields.Where(f => Get(f) is not null).ToList();
        if (given.Count == 0) return;
        if (given.Count > 1) throw ApiException.BadRequest($"Give at most one of {string.Join(", ", fields)}; the request has {string.Join(" and ", given)}.", given[1]);
        var field = given[0];
        List<string>? choices = null;
        if (field == "guided_choice")
        {
            choices = StringOrList(field);
            if (choices.Count == 0) throw ApiException.BadRequest($"'{field}' must hold at least one string.", field);
            if (choices.IndexOf("") is var empty and >= 0) throw ApiException.BadRequest($"'{field}[{empty}]' is empty; every choice must be a non-empty string.", $"{field}[{empty}]");
        }

        try
        {
            options.Constraint = field switch
            {
                "grammar" => Constraints.OutputConstraint.Grammar(String(field)!),
                "guided_choice" => Constraints.OutputConstraint.Choice(choices!),
                _ => Constraints.OutputConstraint.Regex(String(field)!),
            };
        }
        catch (InvalidOptionException e)
        {
            // A syntax error or a constraint past its size limit: the compiler's own explanation, reported against the field.
            throw ApiException.Refused(e, field);
        }
    }

    /// <summary>Hands the field's value, when present, to an option's setter; the setter's refusal is the 400 naming the field.</summary>
    private void Set<T>(string name, T? value, Action<T> assign)
        where T : struct
    {
        if (value is not { } v) return;
        try
        {
            assign(v);
        }
        catch (InvalidOptionException e)
        {
            throw ApiException.Refused(e, At(name));
        }
    }
}
