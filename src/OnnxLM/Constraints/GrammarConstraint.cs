namespace OnnxLM.Constraints;

/// <summary>
/// A context-free grammar (GBNF, see <see cref="GbnfParser"/>) recognised byte by byte with a set of parse stacks, as
/// llama.cpp does: each stack's top is a byte range the text may continue with, below it the positions to return to.
/// Stacks are shared and numbered, so a set of stacks is a state of a lazily built DFA (<see cref="AutomatonConstraint"/>)
/// and repeats: inside a JSON string or a list the state after each item is the same one. Left recursion and rules that
/// can never finish are refused when the grammar is compiled, which keeps every live stack completable (no dead ends).
/// Recursion makes the stacks deeper with the text, so they are bounded too: at most twenty per allowed DFA state.
/// </summary>
internal sealed class GrammarConstraint : AutomatonConstraint
{
    private const int End = -2;
    private const int StacksPerState = 20;

    private readonly GrammarElement[] _flat;      // every alternative's elements, each followed by an End marker
    private readonly int[][] _alternatives;       // rule → the flat position where each alternative starts
    private readonly string _root;
    private readonly List<Stack> _stacks = [null!]; // by id; 0 is the empty stack (the whole text matched)
    private readonly Dictionary<(int Pos, int Next), Stack> _stackIds = [];
    private readonly long _maxStacks;

    /// <summary>A parse stack: a flat position (a byte range on top, return positions below) and the stack under it.</summary>
    private sealed class Stack(int pos, Stack? next, int id)
    {
        public int Pos => pos;

        public Stack? Next => next;

        public int Id => id;
    }

    /// <param name="grammar">The GBNF text.</param>
    /// <param name="root">The rule the whole output must match.</param>
    /// <param name="limits">The size limits (null: <see cref="ConstraintLimits.Default"/>).</param>
    public GrammarConstraint(string grammar, string root, ConstraintLimits? limits = null)
        : base(limits ?? ConstraintLimits.Default, nameof(grammar))
    {
        ArgumentNullException.ThrowIfNull(grammar);
        ArgumentException.ThrowIfNullOrEmpty(root);
        _maxStacks = (long)MaxStates * StacksPerState;
        var parsed = GbnfParser.Parse(grammar, MaxAutomatonSize);
        var rootId = parsed.RuleId(root) ?? throw new InvalidOptionException(nameof(root), $"The grammar has no rule '{root}' to start from.");
        _root = root;
        var rules = parsed.Rules;
        CheckNoLeftRecursion(rules, parsed.Names);
        CheckEveryRuleFinishes(rules, parsed.Names, rootId);

        var flat = new List<GrammarElement>();
        _alternatives = new int[rules.Count][];
        for (var r = 0; r < rules.Count; r++)
        {
            _alternatives[r] = new int[rules[r].Count];
            for (var a = 0; a < rules[r].Count; a++)
            {
                _alternatives[r][a] = flat.Count;
                flat.AddRange(rules[r][a]);
                flat.Add(new GrammarElement(0, 0, End));
            }
        }

        _flat = [.. flat];
        var start = new Expansion();
        foreach (var alternative in _alternatives[rootId]) Expand(alternative, null, start);
        StartState = Intern(start);
    }

    protected override string Describe => $"The grammar (root '{_root}')";

    protected override int? Compute(int state, byte b)
    {
        var expansion = new Expansion();
        foreach (var id in Members(state))
        {
            if (id == 0) continue;
            var stack = _stacks[id];
            var element = _flat[stack.Pos];
            if (b >= element.Lo && b <= element.Hi) Expand(stack.Pos + 1, stack.Next, expansion);
        }

        return expansion.Ids.Count == 0 ? null : Intern(expansion);
    }

    /// <summary>The stacks reached in one step: their ids, and the (position, stack below) pairs already expanded.</summary>
    private sealed class Expansion
    {
        public readonly SortedSet<int> Ids = [];
        public readonly HashSet<(int, int)> Visited = [];
    }

    /// <summary>
    /// Adds the stacks that continue from flat position <paramref name="pos"/> over <paramref name="rest"/>: a byte
    /// range stays on top; a rule reference opens each of its alternatives (returning after the reference, unless the
    /// reference ends its alternative: then straight to <paramref name="rest"/>, so right recursion does not grow the
    /// stack); an alternative's end returns to <paramref name="rest"/>, and an empty stack means the text is complete.
    /// </summary>
    /// <remarks>
    /// A worklist, not recursion: returning through every level of a deeply nested text at once (rules that can end
    /// together) would otherwise take one call frame per level and could overflow the thread's stack.
    /// </remarks>
    private void Expand(int pos, Stack? rest, Expansion into)
    {
        var pending = new Stack<(int Pos, Stack? Below)>();
        pending.Push((pos, rest));
        while (pending.Count > 0)
        {
            (pos, rest) = pending.Pop();
            if (!into.Visited.Add((pos, rest?.Id ?? 0))) continue;
            var element = _flat[pos];
            if (element.Rule == End)
            {
                if (rest is null) into.Ids.Add(0);
                else pending.Push((rest.Pos, rest.Next));
            }
            else if (element.IsRule)
            {
                var after = _flat[pos + 1].Rule == End ? rest : Push(pos + 1, rest);
                foreach (var alternative in _alternatives[element.Rule]) pending.Push((alternative, after));
            }
            else
            {
                into.Ids.Add(Push(pos, rest).Id);
            }
        }
    }

    private Stack Push(int pos, Stack? rest)
    {
        var key = (pos, rest?.Id ?? 0);
        if (_stackIds.TryGetValue(key, out var stack)) return stack;
        if (_stacks.Count >= _maxStacks)
        {
            throw TooLarge(nameof(ConstraintLimits.MaxStates), MaxStates, $"{Describe} needs more than {_maxStacks:N0} parse stacks ({StacksPerState} per automaton state) while generating; deeply nested text grows them.");
        }

        stack = new Stack(pos, rest, _stacks.Count);
        _stacks.Add(stack);
        _stackIds[key] = stack;
        return stack;
    }

    private int Intern(Expansion expansion)
    {
        var ids = expansion.Ids.ToArray();
        var complete = ids[0] == 0;
        return Intern(ids, complete, complete && ids.Length == 1);
    }

    /// <summary>Which rules can match the empty text.</summary>
    private static bool[] Nullable(IReadOnlyList<List<List<GrammarElement>>> rules) => Derivable(rules, bytesAllowed: false);

    /// <summary>
    /// The rules with an alternative whose every rule reference is itself such a rule (and which has no byte element,
    /// unless <paramref name="bytesAllowed"/>): the rules that can match the empty text, or that can finish at all.
    /// </summary>
    /// <remarks>
    /// A worklist with a count of unmet references per alternative, so each element is looked at a bounded number of
    /// times: a pass-until-nothing-changes loop is quadratic on a long chain of rules, which a hostile grammar can write.
    /// </remarks>
    private static bool[] Derivable(IReadOnlyList<List<List<GrammarElement>>> rules, bool bytesAllowed)
    {
        var derivable = new bool[rules.Count];
        var waiting = new List<int>?[rules.Count]; // rule → the alternatives (one entry per reference) that wait for it
        var owner = new List<int>();
        var unmet = new List<int>();
        var ready = new Stack<int>();
        for (var r = 0; r < rules.Count; r++)
        {
            foreach (var alternative in rules[r])
            {
                if (!bytesAllowed && alternative.Exists(e => !e.IsRule)) continue;
                var index = owner.Count;
                owner.Add(r);
                unmet.Add(0);
                foreach (var element in alternative)
                {
                    if (!element.IsRule) continue;
                    unmet[index]++;
                    (waiting[element.Rule] ??= []).Add(index);
                }

                if (unmet[index] == 0) ready.Push(r);
            }
        }

        while (ready.Count > 0)
        {
            var r = ready.Pop();
            if (derivable[r]) continue;
            derivable[r] = true;
            foreach (var index in waiting[r] ?? [])
            {
                if (--unmet[index] == 0) ready.Push(owner[index]);
            }
        }

        return derivable;
    }

    /// <summary>
    /// A rule that can reach itself before reading a byte, through a reference that leaves something to return to,
    /// would push stacks forever: refused, naming it. Cycles through tail references only (<c>(x?)*</c> desugars to
    /// one) push nothing and are cut by the expansion's visited set.
    /// </summary>
    private static void CheckNoLeftRecursion(IReadOnlyList<List<List<GrammarElement>>> rules, IReadOnlyList<string> names)
    {
        var nullable = Nullable(rules);
        var first = new List<(int Rule, bool Tail)>[rules.Count]; // r → the rules that can start r, and whether that reference ends its alternative
        for (var r = 0; r < rules.Count; r++)
        {
            first[r] = [];
            foreach (var alternative in rules[r])
            {
                for (var k = 0; k < alternative.Count && alternative[k].IsRule; k++)
                {
                    first[r].Add((alternative[k].Rule, k == alternative.Count - 1));
                    if (!nullable[alternative[k].Rule]) break;
                }
            }
        }

        // s leads back to r before any byte exactly when r → s is an edge inside one strongly connected component.
        var component = Components(rules.Count, x => first[x].Select(f => f.Rule));
        for (var r = 0; r < rules.Count; r++)
        {
            foreach (var (s, tail) in first[r])
            {
                if (!tail && component[s] == component[r])
                {
                    throw new InvalidOptionException("grammar", $"Grammar rule '{UserName(names[r])}' is left-recursive (it can reach itself before reading any text); rewrite it with repetition (x*, x+).");
                }
            }
        }
    }

    /// <summary>Every rule reachable from the root must be able to finish; otherwise some prefixes would be dead ends.</summary>
    private static void CheckEveryRuleFinishes(IReadOnlyList<List<List<GrammarElement>>> rules, IReadOnlyList<string> names, int root)
    {
        var finishes = Derivable(rules, bytesAllowed: true);
        IEnumerable<int> Uses(int r) => rules[r].SelectMany(a => a).Where(e => e.IsRule).Select(e => e.Rule);
        var stuck = Reachable(rules.Count, root, Uses).Where(r => !finishes[r]).ToList();
        if (stuck.Count == 0) return;
        // Name the rule that needs itself (x ::= "(" x ")"), not the rules that only fail because they use it: one on a
        // cycle of stuck rules, i.e. sharing a strongly connected component with a stuck rule it uses.
        IEnumerable<int> StuckUses(int r) => finishes[r] ? [] : Uses(r).Where(s => !finishes[s]);
        var component = Components(rules.Count, StuckUses);
        var culprit = stuck.FirstOrDefault(r => StuckUses(r).Any(s => component[s] == component[r]), stuck[0]);
        throw new InvalidOptionException("grammar", $"Grammar rule '{UserName(names[culprit])}' can never finish: every alternative needs itself again.");
    }

    /// <summary>
    /// The strongly connected component of every rule along <paramref name="next"/> (Tarjan's algorithm with an explicit
    /// stack, so a long chain of rules cannot overflow the thread's stack): linear in the rules and references.
    /// </summary>
    private static int[] Components(int ruleCount, Func<int, IEnumerable<int>> next)
    {
        var index = new int[ruleCount];
        var low = new int[ruleCount];
        var component = new int[ruleCount];
        var onStack = new bool[ruleCount];
        Array.Fill(index, -1);
        var open = new Stack<int>();
        var frames = new Stack<(int Rule, IEnumerator<int> Edges)>();
        var counter = 0;
        var components = 0;
        for (var from = 0; from < ruleCount; from++)
        {
            if (index[from] >= 0) continue;
            Enter(from);
            while (frames.Count > 0)
            {
                var (r, edges) = frames.Peek();
                if (edges.MoveNext())
                {
                    var s = edges.Current;
                    if (index[s] < 0) Enter(s);
                    else if (onStack[s]) low[r] = Math.Min(low[r], index[s]);
                    continue;
                }

                frames.Pop();
                if (frames.Count > 0) low[frames.Peek().Rule] = Math.Min(low[frames.Peek().Rule], low[r]);
                if (low[r] != index[r]) continue;
                int member;
                do
                {
                    member = open.Pop();
                    onStack[member] = false;
                    component[member] = components;
                }
                while (member != r);
                components++;
            }
        }

        return component;

        void Enter(int r)
        {
            index[r] = low[r] = counter++;
            open.Push(r);
            onStack[r] = true;
            frames.Push((r, next(r).GetEnumerator()));
        }
    }

    /// <summary>The rules reachable from <paramref name="from"/> (itself included) along <paramref name="next"/>, in discovery order.</summary>
    private static List<int> Reachable(int ruleCount, int from, Func<int, IEnumerable<int>> next)
    {
        var seen = new bool[ruleCount];
        var order = new List<int>();
        var pending = new Stack<int>([from]);
        while (pending.Count > 0)
        {
            var r = pending.Pop();
            if (seen[r]) continue;
            seen[r] = true;
            order.Add(r);
            foreach (var s in next(r)) pending.Push(s);
        }

        return order;
    }

    /// <summary>The name the user wrote: generated rules are named after the rule they came from ("value-12").</summary>
    private static string UserName(string name)
    {
        var dash = name.LastIndexOf('-');
        return dash > 0 && name[(dash + 1)..].All(char.IsAsciiDigit) ? name[..dash] : name;
    }
}
