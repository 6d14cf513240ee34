namespace OnnxLM.Constraints;

/// <summary>
/// A constraint whose states are numbered and whose byte transitions are computed once and kept in a table (a DFA
/// built lazily): regular expressions (sets of NFA states) and grammars (sets of parse stacks). Reading a known
/// transition takes no lock, so concurrent generations share one table; a state is only ever added, never changed.
/// </summary>
internal abstract class AutomatonConstraint : OutputConstraint
{
    private const int Unknown = -2;
    private const int Dead = -1;

    private readonly Lock _lock = new();
    private int[][] _rows = new int[16][];
    private bool[] _complete = new bool[16];
    private bool[] _final = new bool[16];
    private int _count;

    /// <summary>The most states one automaton may have before it is refused (each holds a 1 KB row).</summary>
    protected virtual int MaxStates => 100_000;

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

    /// <summary>Numbers a new state (called under the lock, or from the constructor).</summary>
    protected int AddState(bool complete, bool final)
    {
        if (_count >= MaxStates) throw new InvalidOperationException($"{Describe} needs more than {MaxStates:N0} automaton states.");
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
}
