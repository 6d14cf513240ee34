using System.Globalization;
using System.Text.Json;

namespace OnnxLM.Server;

/// <summary>A JSON request body with typed field readers that fail as 400 errors naming the field.</summary>
internal sealed class RequestBody(JsonElement root)
{
    public JsonElement Root { get; } = root;

    public static async Task<RequestBody> ReadAsync(Microsoft.AspNetCore.Http.HttpRequest request, CancellationToken ct)
    {
        try
        {
            using var doc = await JsonDocument.ParseAsync(request.Body, cancellationToken: ct);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("The request body must be a JSON object.");
            return new RequestBody(doc.RootElement.Clone());
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"The request body is not valid JSON: {e.Message}");
        }
    }

    public bool Has(string name) => Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonElement? Get(string name) => Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public string? String(string name) => Get(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        _ => throw ApiException.BadRequest($"'{name}' must be a string.", name),
    };

    public bool Bool(string name, bool fallback = false) => Get(name) switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        _ => throw ApiException.BadRequest($"'{name}' must be true or false.", name),
    };

    public int? Int(string name, int min = int.MinValue, int max = int.MaxValue)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var i)) throw ApiException.BadRequest($"'{name}' must be an integer.", name);
        if (i < min || i > max) throw ApiException.BadRequest($"'{name}' must be between {min} and {max}; got {i}.", name);
        return i;
    }

    public long? Long(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l) ? l : throw ApiException.BadRequest($"'{name}' must be an integer.", name);
    }

    public float? Float(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Number ? v.GetSingle() : throw ApiException.BadRequest($"'{name}' must be a number.", name);
    }

    public List<string> StringOrList(string name) => Get(name) switch
    {
        null => [],
        { ValueKind: JsonValueKind.String } s => [s.GetString()!],
        { ValueKind: JsonValueKind.Array } a when a.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String) => [.. a.EnumerateArray().Select(x => x.GetString()!)],
        _ => throw ApiException.BadRequest($"'{name}' must be a string or a list of strings.", name),
    };

    /// <summary>The sampling fields shared by completions and chat, into <paramref name="options"/>; a bad value is a 400 naming the field.</summary>
    public void ApplySampling(GenerationOptions options, int defaultMaxTokens, int maxAllowedTokens)
    {
        try
        {
            var max = Int("max_completion_tokens", 0) ?? Int("max_tokens", 0) ?? Math.Min(defaultMaxTokens, maxAllowedTokens);
            if (max > maxAllowedTokens)
            {
                throw ApiException.BadRequest($"'max_tokens' is {max}; this server allows at most {maxAllowedTokens} new tokens per request.", Has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens");
            }

            if (max > 0) options.MaxNewTokens = max; // 0 (score the prompt only) is the caller's to handle
            options.Temperature = Float("temperature") ?? 1f;
            options.TopP = Float("top_p") ?? 1f;
            if (Int("top_k", 0) is { } k) options.TopK = k;
            if (Float("min_p") is { } minP) options.MinP = minP;
            if (Float("typical_p") is { } typical) options.TypicalP = typical;
            if ((Float("repetition_penalty") ?? Float("repeat_penalty")) is { } rep) options.RepetitionPenalty = rep;
            options.SetOpenAIPenalties(Float("presence_penalty"), Float("frequency_penalty"));
            if (Long("seed") is { } seed) options.Seed = GenerationOptions.FoldSeed(seed);
            foreach (var stop in StringOrList("stop")) options.StopSequences.Add(stop);
            ApplyConstraint(options);
            if (Get("logit_bias") is { } bias)
            {
                if (bias.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("'logit_bias' must be an object of token id → bias.", "logit_bias");
                foreach (var p in bias.EnumerateObject())
                {
                    if (!int.TryParse(p.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || p.Value.ValueKind != JsonValueKind.Number)
                    {
                        throw ApiException.BadRequest($"'logit_bias' has the entry '{p.Name}'; keys must be token ids and values numbers.", "logit_bias");
                    }

                    options.LogitBias[id] = p.Value.GetSingle();
                }
            }
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw ApiException.BadRequest(e.Message.Split(" (Parameter")[0], Snake(e.ParamName));
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
        try
        {
            options.Constraint = field switch
            {
                "grammar" => Constraints.OutputConstraint.Grammar(String(field)!),
                "guided_choice" => Constraints.OutputConstraint.Choice(StringOrList(field)),
                _ => Constraints.OutputConstraint.Regex(String(field)!),
            };
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(e.Message.Split(" (Parameter")[0], field);
        }
    }

    private static string? Snake(string? name) => name is null ? null : string.Concat(name.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "_" : "") + char.ToLowerInvariant(c) : c.ToString()));
}
