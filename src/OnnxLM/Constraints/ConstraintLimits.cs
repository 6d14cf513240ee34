namespace OnnxLM.Constraints;

/// <summary>
/// How large an <see cref="OutputConstraint"/> may grow: the automaton compiled from a regex, JSON schema, choice list
/// or grammar, and the states built from it while generating. A constraint over either limit is refused with a
/// <see cref="ConstraintTooLargeException"/> before the memory is taken, so one hostile pattern cannot exhaust a server.
/// </summary>
/// <remarks>
/// Repetition counts multiply: <c>((x{1000}){1000}){1000}</c> caps each count at 1000 but spells a billion characters.
/// The defaults leave a wide margin over realistic constraints (dates, e-mail addresses, <c>.{1,1000}</c>, the JSON
/// schemas of tool calls) while keeping one constraint to at most a couple of hundred megabytes.
/// </remarks>
public sealed class ConstraintLimits
{
    /// <summary>The default <see cref="MaxAutomatonSize"/>: 4,000,000.</summary>
    public const int DefaultMaxAutomatonSize = 4_000_000;

    /// <summary>The default <see cref="MaxStates"/>: 100,000.</summary>
    public const int DefaultMaxStates = 100_000;

    /// <summary>The limits used when a factory is given none.</summary>
    internal static ConstraintLimits Default { get; } = new();

    /// <summary>
    /// The largest compiled constraint: NFA states for a regular expression or choice list (a repetition <c>{m,n}</c>
    /// counts its part <c>n</c> times), characters of the regular expression a JSON schema compiles to as well as its NFA
    /// states, and elements of a grammar's rules. Default <see cref="DefaultMaxAutomatonSize"/>: at most about 150 MB and a second or two to compile; a JSON string with
    /// <c>maxLength</c> 1000 alone takes about 113,000 states, so ten of them fit, and <c>.{1,1000}</c> about 41,000.
    /// </summary>
    /// <exception cref="InvalidOptionException">The value is below 1.</exception>
    public int MaxAutomatonSize
    {
        get;
        set => field = OptionCheck.AtLeast(value, 1, nameof(MaxAutomatonSize));
    } = DefaultMaxAutomatonSize;

    /// <summary>
    /// The most states the automaton may build while generating (each caches the next state for all 256 bytes, 1 KB; a
    /// state that tracks more than 256 positions counts once more per 256). A grammar may also keep at most twenty times
    /// as many parse stacks. Default <see cref="DefaultMaxStates"/> (about 100 MB at most). Generation that needs more
    /// fails with a <see cref="ConstraintTooLargeException"/>.
    /// </summary>
    /// <exception cref="InvalidOptionException">The value is below 1.</exception>
    public int MaxStates
    {
        get;
        set => field = OptionCheck.AtLeast(value, 1, nameof(MaxStates));
    } = DefaultMaxStates;
}
