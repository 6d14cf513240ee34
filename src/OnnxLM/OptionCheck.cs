using System.Globalization;

namespace OnnxLM;

/// <summary>
/// The checks the options classes' setters share: each returns the value when it is accepted and otherwise throws an
/// <see cref="InvalidOptionException"/> naming the option, what it takes and what it got
/// (<c>set => _topK = OptionCheck.AtLeast(value, 0, nameof(TopK))</c>).
/// </summary>
internal static class OptionCheck
{
    /// <summary>An integer of at least <paramref name="min"/>.</summary>
    public static int AtLeast(int value, int min, string name) =>
        value >= min ? value : throw Refuse(name, $"must be at least {S(min)}", value);

    /// <summary>A 64-bit integer of at least <paramref name="min"/>.</summary>
    public static long AtLeast(long value, long min, string name) =>
        value >= min ? value : throw Refuse(name, $"must be at least {S(min)}", value);

    /// <summary>An integer from <paramref name="min"/> to <paramref name="max"/>.</summary>
    public static int InRange(int value, int min, int max, string name) =>
        value >= min && value <= max ? value : throw Refuse(name, $"must be between {S(min)} and {S(max)}", value);

    /// <summary>A finite number.</summary>
    public static float Finite(float value, string name) =>
        float.IsFinite(value) ? value : throw Refuse(name, "must be a finite number", value);

    /// <summary>A finite number of at least <paramref name="min"/>; <paramref name="note"/> is added in brackets (what the bound means).</summary>
    public static float AtLeast(float value, float min, string name, string? note = null) =>
        value >= min && float.IsFinite(value) ? value : throw Refuse(name, $"must be a finite number ≥ {S(min)}{(note is null ? "" : $" ({note})")}", value);

    /// <summary>A finite number above <paramref name="min"/>.</summary>
    public static float Above(float value, float min, string name) =>
        value > min && float.IsFinite(value) ? value : throw Refuse(name, $"must be a finite number > {S(min)}", value);

    /// <summary>A number in the interval from <paramref name="low"/> to <paramref name="high"/>, each end included unless said open.</summary>
    public static float InRange(float value, float low, float high, string name, bool lowOpen = false, bool highOpen = false)
    {
        var ok = (lowOpen ? value > low : value >= low) && (highOpen ? value < high : value <= high);
        return ok ? value : throw Refuse(name, $"must be in {(lowOpen ? '(' : '[')}{S(low)}, {S(high)}{(highOpen ? ')' : ']')}", value);
    }

    /// <summary>A positive time span, or also <paramref name="alsoAllowed"/> when given (<see cref="Timeout.InfiniteTimeSpan"/>).</summary>
    public static TimeSpan Positive(TimeSpan value, string name, TimeSpan? alsoAllowed = null, string? alsoSaid = null) =>
        value > TimeSpan.Zero || value == alsoAllowed ? value : throw Refuse(name, $"must be positive{(alsoSaid is null ? "" : $", or {alsoSaid}")}", value);

    /// <summary>The exception for <paramref name="name"/>: "<paramref name="name"/> <paramref name="requirement"/>; got <paramref name="value"/>."</summary>
    public static InvalidOptionException Refuse(string name, string requirement, object? value) =>
        new(name, $"{name} {requirement}; got {S(value)}.");

    private static string S(object? value) => value switch
    {
        null => "null",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
