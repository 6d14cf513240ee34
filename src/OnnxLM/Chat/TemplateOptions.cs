namespace OnnxLM.Chat;

/// <summary>
/// How a <see cref="JinjaTemplate"/> is parsed and the bounds its rendering runs under. The defaults are what
/// transformers uses for chat templates (<c>trim_blocks</c> and <c>lstrip_blocks</c> on) and bounds far above what
/// any real chat template needs.
/// </summary>
public sealed class TemplateOptions
{
    private int _maxOutputLength = 4 * 1024 * 1024;
    private int _maxIterations = 1_000_000;
    private int _maxCallDepth = 64;

    /// <summary>Removes the first newline after a block tag (<c>%}</c>) or comment. Default true, as transformers.</summary>
    public bool TrimBlocks { get; init; } = true;

    /// <summary>Removes spaces and tabs from the start of a line up to a block tag or comment. Default true, as transformers.</summary>
    public bool LStripBlocks { get; init; } = true;

    /// <summary>The most characters one render may produce (default 4 Mi), including strings built on the way.</summary>
    public int MaxOutputLength
    {
        get => _maxOutputLength;
        init => _maxOutputLength = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(MaxOutputLength), value, "MaxOutputLength must be positive.");
    }

    /// <summary>The most loop iterations one render may run, all loops together (default 1,000,000).</summary>
    public int MaxIterations
    {
        get => _maxIterations;
        init => _maxIterations = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(MaxIterations), value, "MaxIterations must be positive.");
    }

    /// <summary>The deepest nesting of macro calls (default 64), which bounds recursion.</summary>
    public int MaxCallDepth
    {
        get => _maxCallDepth;
        init => _maxCallDepth = value is > 0 and <= 1000 ? value : throw new ArgumentOutOfRangeException(nameof(MaxCallDepth), value, "MaxCallDepth must be between 1 and 1000.");
    }

    /// <summary>The clock behind <c>strftime_now</c> (default the system clock, local time); tests inject a fixed one.</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;

    internal static TemplateOptions Default { get; } = new();
}
