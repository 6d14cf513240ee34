using System.CommandLine;

namespace OnnxLM.Cli;

/// <summary>
/// "Did you mean" for a mistyped command name: the commands the word begins (<c>gen</c> → <c>generate</c>), else those
/// within a small edit distance (<c>genrate</c> → <c>generate</c>, <c>scroe</c> → <c>score</c>). Options are never suggested for a command name.
/// </summary>
internal static class CommandSuggestions
{
    /// <summary>The suggestion line for the first unknown word where a command name was expected, or null when there is none to make.</summary>
    public static string? For(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        if (command.Subcommands.Count == 0) return null;
        var word = parse.UnmatchedTokens.FirstOrDefault(t => !t.StartsWith('-'));
        if (word is null) return null;
        var names = command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name).ToList();
        var matches = Suggest(word, names);
        if (matches.Count == 0) return null;
        var path = parse.CommandResult.Command == parse.RootCommandResult.Command ? command.Name : $"{parse.RootCommandResult.Command.Name} {command.Name}";
        return $"onnxlm: unknown command '{word}'. Did you mean {string.Join(" or ", matches.Select(m => $"'{path} {m}'"))}?";
    }

    /// <summary>The names <paramref name="word"/> begins (or that begin it), else the nearest within a third of its length (at least 1, at most 3 edits).</summary>
    internal static IReadOnlyList<string> Suggest(string word, IEnumerable<string> names)
    {
        var lower = word.ToLowerInvariant();
        var all = names.ToList();
        var prefixed = all.Where(n => n.StartsWith(lower, StringComparison.Ordinal) || (lower.Length > n.Length && lower.StartsWith(n, StringComparison.Ordinal))).ToList();
        if (prefixed.Count > 0) return prefixed;
        var limit = Math.Clamp(lower.Length / 3, 1, 3);
        var scored = all.Select(n => (Name: n, Distance: Distance(lower, n))).Where(s => s.Distance <= limit).ToList();
        if (scored.Count == 0) return [];
        var best = scored.Min(s => s.Distance);
        return [.. scored.Where(s => s.Distance == best).Select(s => s.Name)];
    }

    /// <summary>Edit distance counting insertions, deletions, substitutions and swaps of neighbours (optimal string alignment): "scroe" is 1 from "score".</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }

        return d[a.Length, b.Length];
    }
}
