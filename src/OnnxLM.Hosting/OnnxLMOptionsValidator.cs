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

        Check(!string.IsNullOrWhiteSpace(options.ModelPath), nameof(options.ModelPath), options.ModelPath, "must name a model folder");
        if (!string.IsNullOrWhiteSpace(options.ModelPath))
        {
            Check(Directory.Exists(options.ModelPath), nameof(options.ModelPath), options.ModelPath, "must be an existing folder");
        }

        Check(options.Dtype is null || !string.IsNullOrWhiteSpace(options.Dtype), nameof(options.Dtype), options.Dtype, "must be a dtype name such as q4 or fp16, or absent");
        Check(options.Variant is null || !string.IsNullOrWhiteSpace(options.Variant), nameof(options.Variant), options.Variant, "must be a variant folder such as cuda/cuda-fp16, or absent");
        Check(options.DeviceId >= 0, nameof(options.DeviceId), options.DeviceId, "must be 0 or more");
        Check(options.IntraOpThreadCount is null or >= 0, nameof(options.IntraOpThreadCount), options.IntraOpThreadCount, "must be 0 (ONNX Runtime's choice) or more");
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
            Check(d.MaxOutputTokens >= 1, $"Defaults:{nameof(d.MaxOutputTokens)}", d.MaxOutputTokens, "must be at least 1");
            Check(float.IsFinite(d.Temperature) && d.Temperature >= 0, $"Defaults:{nameof(d.Temperature)}", d.Temperature, "must be 0 (greedy) or more");
            Check(d.TopP is > 0 and <= 1, $"Defaults:{nameof(d.TopP)}", d.TopP, "must be in (0, 1]");
            Check(d.TopK >= 0, $"Defaults:{nameof(d.TopK)}", d.TopK, "must be 0 (off) or more");
            Check(float.IsFinite(d.RepetitionPenalty) && d.RepetitionPenalty > 0, $"Defaults:{nameof(d.RepetitionPenalty)}", d.RepetitionPenalty, "must be positive");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
