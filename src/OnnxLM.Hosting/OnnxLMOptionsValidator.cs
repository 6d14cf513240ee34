using Microsoft.Extensions.Options;

namespace OnnxLM.Hosting;

/// <summary>
/// Checks one named <see cref="OnnxLMOptions"/> when the host starts; each failure names the configuration key
/// (<c>OnnxLM:MaxConcurrentSequences</c>) and the value found.
/// </summary>
public sealed class OnnxLMOptionsValidator : IValidateOptions<OnnxLMOptions>
{
    private readonly string _name;
    private readonly string _prefix;

    /// <summary>Creates the validator for the options named <paramref name="name"/>, bound from <paramref name="configurationPath"/>.</summary>
    public OnnxLMOptionsValidator(string name, string configurationPath)
    {
        _name = name;
        _prefix = configurationPath;
    }

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, OnnxLMOptions options)
    {
        if ((name ?? Options.DefaultName) != _name) return ValidateOptionsResult.Skip;
        var failures = new List<string>();
        void Check(bool ok, string key, object? value, string rule)
        {
            if (!ok) failures.Add($"{_prefix}:{key} {rule} (found {(value is null ? "nothing" : $"'{value}'")}).");
        }

        // Values handed on to the library's options are checked by the setters they go to, whose rules are the library's.
        void Set(string key, Action assign)
        {
            try
            {
                assign();
            }
            catch (InvalidOptionException e)
            {
                failures.Add($"{_prefix}:{key}: {e.Reason}");
            }
        }

        Check(!string.IsNullOrWhiteSpace(options.ModelPath), nameof(options.ModelPath), options.ModelPath, "must name a model folder");
        if (!string.IsNullOrWhiteSpace(options.ModelPath))
        {
            Check(Directory.Exists(options.ModelPath), nameof(options.ModelPath), options.ModelPath, "must be an existing folder");
        }

        Check(options.Dtype is null || !string.IsNullOrWhiteSpace(options.Dtype), nameof(options.Dtype), options.Dtype, "must be a dtype name such as q4 or fp16, or absent");
        Check(options.Variant is null || !string.IsNullOrWhiteSpace(options.Variant), nameof(options.Variant), options.Variant, "must be a variant folder such as cuda/cuda-fp16, or absent");
        var load = new LanguageModelOptions();
        Set(nameof(options.DeviceId), () => load.DeviceId = options.DeviceId);
        Set(nameof(options.IntraOpThreadCount), () => load.IntraOpThreadCount = options.IntraOpThreadCount ?? 0);
        Set(nameof(options.WeightCacheDirectory), () => load.WeightCacheDirectory = options.WeightCacheDirectory);
        Check(options.MaxConcurrentSequences is >= 1 and <= 1024, nameof(options.MaxConcurrentSequences), options.MaxConcurrentSequences, "must be between 1 and 1024");
        Check(options.MaxQueueLength is >= 0 and <= 1_000_000, nameof(options.MaxQueueLength), options.MaxQueueLength, "must be between 0 and 1000000");
        Check(options.CachedConversations is >= 0 and <= 1024, nameof(options.CachedConversations), options.CachedConversations, "must be between 0 and 1024");
        Check(options.ChatTemplatePath is null || File.Exists(options.ChatTemplatePath), nameof(options.ChatTemplatePath), options.ChatTemplatePath, "must be an existing file");
        var d = options.Defaults;
        if (d is null)
        {
            failures.Add($"{_prefix}:{nameof(options.Defaults)} must not be null.");
        }
        else
        {
            var generation = new GenerationOptions();
            Set($"Defaults:{nameof(d.MaxOutputTokens)}", () => generation.MaxNewTokens = d.MaxOutputTokens);
            Set($"Defaults:{nameof(d.Temperature)}", () => generation.Temperature = d.Temperature);
            Set($"Defaults:{nameof(d.TopP)}", () => generation.TopP = d.TopP);
            Set($"Defaults:{nameof(d.TopK)}", () => generation.TopK = d.TopK);
            Set($"Defaults:{nameof(d.RepetitionPenalty)}", () => generation.RepetitionPenalty = d.RepetitionPenalty);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
