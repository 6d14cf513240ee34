namespace OnnxLM.Constraints;

/// <summary>
/// An output constraint would grow past one of its <see cref="ConstraintLimits"/>: thrown while compiling it (before the
/// memory is taken) or, for <see cref="ConstraintLimits.MaxStates"/>, while generating with it. The message names the
/// limit, its value and how to raise it.
/// </summary>
/// <remarks>
/// It is an <see cref="InvalidOptionException"/> (an <see cref="ArgumentException"/>) because the pattern, schema, grammar or
/// choice list it names (<see cref="InvalidOptionException.OptionName"/>) is what was too large, so code that catches invalid
/// constraints catches this too.
/// </remarks>
public sealed class ConstraintTooLargeException : InvalidOptionException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="limitName">The <see cref="ConstraintLimits"/> property that was exceeded.</param>
    /// <param name="limit">That property's value.</param>
    /// <param name="message">What grew too large, and why.</param>
    /// <param name="paramName">The factory parameter holding the constraint: pattern, choices, schema or grammar (null: <c>Constraint</c>, the generation option).</param>
    public ConstraintTooLargeException(string limitName, int limit, string message, string? paramName)
        : base(paramName ?? nameof(GenerationOptions.Constraint), string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{message} The limit is ConstraintLimits.{limitName} = {limit:N0}; simplify the constraint or pass a ConstraintLimits with a larger {limitName}."))
    {
        ArgumentException.ThrowIfNullOrEmpty(limitName);
        LimitName = limitName;
        Limit = limit;
    }

    /// <summary>The name of the <see cref="ConstraintLimits"/> property that was exceeded, e.g. <c>MaxAutomatonSize</c>.</summary>
    public string LimitName { get; }

    /// <summary>The value of that limit when the constraint was built.</summary>
    public int Limit { get; }
}
