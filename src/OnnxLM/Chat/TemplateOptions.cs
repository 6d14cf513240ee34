namespace OnnxLM.Chat;

/// <summary>
/// How a <see cref="JinjaTemplate"/> is parsed and the bounds its rendering runs under. The defaults are what
/// transformers uses for chat templates (<c>trim_blocks</c> and <c>lstrip_blocks</c> on) and bounds far above what
/// any real chat template needs.
/// </summary>
/// <remarks>
/// A template is untrusted input (it ships inside a model's tokenizer_config.json), so rendering has four bounds, each
/// raising <see cref="TemplateLimitExceededException"/> with the option's name: work (<see cref="MaxSteps"/>),
/// size (<see cref="MaxOutputLength"/>), nesting (<see cref="MaxDepth"/> and <see cref="MaxCallDepth"/>, which keep
/// the stack bounded) and time (<see cref="MaxRenderTime"/>). A render also stops when its cancellation token fires.
/// </remarks>
public sealed class TemplateOptions
{
    private long _maxSteps = 1_000_000;
    private TimeZoneInfo _timeZone = TimeZoneInfo.Utc;

    /// <summary>Removes the first newline after a block tag (<c>%}</c>) or comment. Default true, as transformers.</summary>
    public bool TrimBlocks { get; init; } = true;

    /// <summary>Removes spaces and tabs from the start of a line up to a block tag or comment. Default true, as transformers.</summary>
    public bool LStripBlocks { get; init; } = true;

    /// <summary>The most characters one render may produce (default 4 Mi), including strings and lists built on the way.</summary>
    public int MaxOutputLength { get; init => field = OptionCheck.AtLeast(value, 1, nameof(MaxOutputLength)); } = 4 * 1024 * 1024;

    /// <summary>
    /// The work one render may do, in steps (default 1,000,000, a few hundred milliseconds): every statement and
    /// expression is a step, a loop iteration 4 and a macro call 10, and every item of a list, and every 64 characters
    /// of a string, that a filter, method, operator or the output goes through is one more.
    /// </summary>
    /// <remarks>
    /// One budget for all work, so no mix of loops, calls and big values can run for long. The real chat templates of the
    /// conformance suite take at most a few hundred steps for its conversations and at most about 70,000 for one of
    /// 1,000 messages (measured by ChatTemplateConformanceTests.RealTemplatesStayFarInsideTheBounds).
    /// </remarks>
    public long MaxSteps
    {
        get => _maxSteps;
        init => _maxSteps = OptionCheck.AtLeast(value, 1L, nameof(MaxSteps));
    }

    /// <summary>Obsolete: loop iterations now count toward <see cref="MaxSteps"/>, the one work budget; this sets it.</summary>
    [Obsolete("Loop iterations count toward MaxSteps, the one work budget of a render (with calls, expressions and big values); set MaxSteps.")]
    public int MaxIterations
    {
        get => (int)Math.Min(_maxSteps, int.MaxValue);
        init => _maxSteps = OptionCheck.AtLeast(value, 1, nameof(MaxIterations));
    }

    /// <summary>
    /// The deepest the template may nest (default 256, at most 10,000): a block inside a block, an operand inside an
    /// operator or a literal, each link of a chain such as <c>a + b + c</c> or <c>x|f|g</c>, and at render time the
    /// body of each macro being called. Checked when the template is parsed and again while it renders.
    /// </summary>
    public int MaxDepth { get; init => field = OptionCheck.InRange(value, 1, 10_000, nameof(MaxDepth)); } = 256;

    /// <summary>The deepest nesting of macro calls (default 64, at most 1,000), which bounds recursion.</summary>
    public int MaxCallDepth { get; init => field = OptionCheck.InRange(value, 1, 1000, nameof(MaxCallDepth)); } = 64;

    /// <summary>
    /// The longest one render may take (default 10 s), measured with <see cref="Clock"/>; <see cref="Timeout.InfiniteTimeSpan"/>
    /// for no limit. A backstop for work <see cref="MaxSteps"/> counts coarsely; real templates render in milliseconds.
    /// </summary>
    public TimeSpan MaxRenderTime { get; init => field = OptionCheck.Positive(value, nameof(MaxRenderTime), Timeout.InfiniteTimeSpan, "Timeout.InfiniteTimeSpan for no limit"); } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The clock behind <c>strftime_now</c> and <see cref="MaxRenderTime"/> (default the system clock); tests inject a
    /// fixed one. ChatTemplate.Render can give <c>strftime_now</c> another clock for one render.
    /// </summary>
    public TimeProvider Clock { get; init => field = value ?? throw new ArgumentNullException(nameof(Clock)); } = TimeProvider.System;

    /// <summary>
    /// The zone <c>strftime_now</c> writes the time in (default UTC, so a server's prompts do not depend on where it
    /// runs; transformers uses the machine's local time, <see cref="TimeZoneInfo.Local"/>).
    /// </summary>
    public TimeZoneInfo TimeZone
    {
        get => _timeZone;
        init => _timeZone = value ?? throw new ArgumentNullException(nameof(TimeZone));
    }

    internal static TemplateOptions Default { get; } = new();
}
