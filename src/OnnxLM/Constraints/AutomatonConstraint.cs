using System.Globalization;

namespace OnnxLM.Constraints;

/// <summary>
/// A constraint whose states are numbered and whose byte transitions are computed once and kept in a table (a DFA
/// built lazily): regular expressions (sets of NFA states) and grammars (sets of parse stacks). Reading a known
/// transition takes no lock, so concurrent generations share one table; a state is only ever added, never changed.
/// The table is bounded by <see cref="ConstraintLimits.MaxStates"/>.
/// </summary>
internal abstract class AutomatonConstraint : OutputConstraint
{
    private const int Unknown = -2;
    private const int Dead = -1;

    // A state's row holds 256 ints; its member set counts once more per 256 members, so the budget bounds both.
    private const int MembersPerUnit = 256;

    private readonly Lock _lock = new();
    private readonly List<int[]> _members = [];
    private readonly Dictionary<int[], int> _ids = new(MemberSetComparer.Instance);
    private readonly int _maxStates;
    private readonly string _parameterName;
    private int[][] _rows = new int[16][];
    private bool[] _complete = new bool[16];
    private bool[] _final = new bool[16];
    private int _count;
    private long _units;

    /// <param name="limits">The limits read once here (later changes to the object do not apply).</param>
    /// <param name="parameterName">The factory parameter the constraint came from, named by a <see cref="ConstraintTooLargeException"/>.</param>
    protected AutomatonConstraint(ConstraintLimits limits, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(limits);
        _maxStates = limits.MaxStates;
        MaxAutomatonSize = limits.MaxAutomatonSize;
        _parameterName = parameterName;
    }

    /// <summary>The compiled-size limit (<see cref="ConstraintLimits.MaxAutomatonSize"/>) the subclass checks while compiling.</summary>
    protected int MaxAutomatonSize { get; }

    /// <summary>The state limit (<see cref="ConstraintLimits.MaxStates"/>).</summary>
    protected int MaxStates => _maxStates;

    protected abstract string Describe { get; }

    internal override object Start => StartState;

    /// <summary>The start state's number (the subclass adds it in its constructor).</summary>
    protected int StartState { get; set; }

    /// <summary>The state after <paramref name="b"/>, or −1 when no valid output continues with it.</summary>
    internal int Next(int state, byte b)
    {
        var next = Volatile.Read(ref Volatile.Read(ref _rows)[state][b]);
        if (next != Unknown) return next;
        lock (_lock)
        {
            var row = _rows[state];
            // Published with release semantics: a reader that sees the new number also sees its row.
            if (row[b] == Unknown) Volatile.Write(ref row[b], Compute(state, b) ?? Dead);
            return row[b];
        }
    }

    /// <summary>Computes a transition (called under the lock): the new or existing state, or null for none.</summary>
    protected abstract int? Compute(int state, byte b);

    /// <summary>The sorted members (NFA states, parse stacks) of a state, as given to <see cref="Intern"/>.</summary>
    protected int[] Members(int state) => _members[state];

    /// <summary>
    /// The number of the state made of <paramref name="members"/> (sorted, not changed afterwards), adding it when new
    /// (called under the lock, or from the constructor).
    /// </summary>
    protected int Intern(int[] members, bool complete, bool final)
    {
        if (_ids.TryGetValue(members, out var id)) return id;
        var units = 1L + members.Length / MembersPerUnit;
        if (_units + units > _maxStates)
        {
            throw TooLarge(nameof(ConstraintLimits.MaxStates), _maxStates, $"{Describe} needs more than {_maxStates:N0} automaton states while generating (each caches its next state for every byte).");
        }

        _units += units;
        id = AddState(complete, final);
        _members.Add(members);
        _ids[members] = id;
        return id;
    }

    /// <summary>The exception for a limit this constraint would exceed, naming the factory parameter it came from.</summary>
    protected ConstraintTooLargeException TooLarge(string limitName, int limit, FormattableString message) =>
        new(limitName, limit, message.ToString(CultureInfo.InvariantCulture), _parameterName);

    private int AddState(bool complete, bool final)
    {
        if (_count == _rows.Length)
        {
            var rows = new int[_count * 2][];
            Array.Copy(_rows, rows, _count);
            Array.Resize(ref _complete, _count * 2);
            Array.Resize(ref _final, _count * 2);
            _complete[_count] = complete;
            _final[_count] = final;
            rows[_count] = NewRow();
            Volatile.Write(ref _rows, rows);
        }
        else
        {
            _complete[_count] = complete;
            _final[_count] = final;
            _rows[_count] = NewRow();
        }

        return _count++;
    }

    private static int[] NewRow()
    {
        var row = new int[256];
        Array.Fill(row, Unknown);
        return row;
    }

    internal override object? Step(object state, byte b) => Next((int)state, b) is var next && next >= 0 ? next : null;

    internal override bool IsComplete(object state)
    {
        lock (_lock) return _complete[(int)state];
    }

    internal override bool IsFinal(object state)
    {
        lock (_lock) return _final[(int)state];
    }

    /// <summary>The same walk as the base class's, on state numbers: no boxing at every trie node.</summary>
    internal override void AddAllowed(object state, TokenTrie trie, ulong[] allowed) => trie.AddAllowed(new Stepper(this), (int)state, allowed);

    private readonly struct Stepper(AutomatonConstraint automaton) : TokenTrie.IStepper<int>
    {
        public bool TryStep(int state, byte b, out int next) => (next = automaton.Next(state, b)) >= 0;
    }

    /// <summary>Member sets compared by content, so a state is found again without building a text key for it.</summary>
    private sealed class MemberSetComparer : IEqualityComparer<int[]>
    {
        public static readonly MemberSetComparer Instance = new();

        public bool Equals(int[]? x, int[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(int[] members)
        {
            var hash = new HashCode();
            hash.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(members.AsSpan()));
            return hash.ToHashCode();
        }
    }
}
