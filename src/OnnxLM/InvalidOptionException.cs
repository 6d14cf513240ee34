namespace OnnxLM;

/// <summary>
/// An option was given a value it does not take: thrown by the setters and checks of the options classes
/// (<see cref="GenerationOptions"/>, <see cref="LanguageModelOptions"/>, …) and by the output constraints' compilers.
/// <see cref="OptionName"/> names the option as its property is spelled; <see cref="Reason"/> says what it takes.
/// </summary>
/// <remarks>
/// It is an <see cref="ArgumentException"/> whose <see cref="ArgumentException.ParamName"/> is <see cref="OptionName"/>, so
/// code that catches invalid arguments catches this too. <see cref="ArgumentException.Message"/> appends the parameter
/// name; a command line or an HTTP layer shows <see cref="Reason"/> next to its own name for the option instead.
/// </remarks>
public class InvalidOptionException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="optionName">The option, as its property is spelled (<c>Temperature</c>), or the constraint factory's parameter (<c>grammar</c>).</param>
    /// <param name="reason">What was wrong and what the option takes, as a sentence.</param>
    public InvalidOptionException(string optionName, string reason)
        : base(reason, optionName)
    {
        ArgumentException.ThrowIfNullOrEmpty(optionName);
        ArgumentException.ThrowIfNullOrEmpty(reason);
        OptionName = optionName;
        Reason = reason;
    }

    /// <summary>The option that was refused, as its property is spelled, e.g. <c>Temperature</c>.</summary>
    public string OptionName { get; }

    /// <summary>What was wrong, e.g. <c>TopP must be in (0, 1]; got 1.5.</c>: the message without the parameter name that <see cref="ArgumentException.Message"/> appends.</summary>
    public string Reason { get; }
}
