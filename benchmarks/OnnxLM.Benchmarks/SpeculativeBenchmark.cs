using System.Diagnostics;
using System.Globalization;
using OnnxLM;

/// <summary>
/// speculative [folder] [--show] [--draft N] [--min-ngram N] [--temperature T]: greedy (or seeded sampling) generation with and without prompt-lookup speculation on kjv-tiny, alternating
/// plain and speculative runs so the machine's load hits both alike: tokens/s ratio per round (min, median, max),
/// draft acceptance, tokens per model run, and whether every run gave the plain run's tokens.
/// </summary>
internal static class SpeculativeBenchmark
{
    private static readonly int Rounds = int.TryParse(Environment.GetEnvironmentVariable("SPEC_ROUNDS"), out var r) ? r : 7;
    private const int NewTokens = 100;

    public static async Task<int> RunAsync(string folder, bool show, int draftLength = 10, int minNGram = 1, float temperature = 0)
    {
        SpeculativeDecoding Settings() => new() { DraftLength = draftLength, MinNGramSize = minNGram, MaxNGramSize = Math.Max(3, minNGram) };
        using var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
        var text = File.ReadAllText(Path.Combine(Benchmarks.RepoRoot(), "tests", "data", "kjv", "revelation.txt"));
        (string Name, string Prompt)[] cases =
        [
            ("Rev 1:1-3, then its start again", Grounded(text, "The Revelation of Jesus Christ", "John to the seven churches")),
            ("Rev 1:4-6, then its start again", Grounded(text, "John to the seven churches", "Behold, he cometh")),
            ("Rev 21:1-3, then its start again", Grounded(text, "And I saw a new heaven", "And God shall wipe away")),
            ("Genesis 1:1-5, then its start again", Repeat(Genesis)),
            ("Psalm 23, then its start again", Repeat(Psalm23)),
            ("not grounded: \"And the LORD said unto Moses,\"", "And the LORD said unto Moses,"),
        ];

        Console.WriteLine($"{Path.GetFileName(folder.TrimEnd('/'))}: {NewTokens} {(temperature > 0 ? $"sampled (temperature {temperature}, seed = round)" : "greedy")} tokens (prefill included), CPU, {Environment.ProcessorCount} cores; " +
            $"prompt lookup (draft ≤ {draftLength}, n-gram {Math.Max(3, minNGram)}..{minNGram}); {Rounds} rounds, plain and speculative alternating");
        Console.WriteLine();
        Console.WriteLine("| prompt | prompt tokens | plain tokens/s (median) | speculative tokens/s (median) | × min | × median | × max | drafts accepted | tokens per run | copies the passage for | identical |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        var allIdentical = true;
        foreach (var (name, prompt) in cases)
        {
            var ids = model.Tokenizer.Encode(prompt);
            var newTokens = Math.Min(NewTokens, model.Info.ContextLength - ids.Length);
            var plainOptions = new GenerationOptions { MaxNewTokens = newTokens, StopTokenIds = [], Temperature = temperature };
            var reference = await model.GenerateAsync(ids, plainOptions); // also the warm-up
            await model.GenerateAsync(ids, Speculative(plainOptions, Settings()));
            if (show) Console.Error.WriteLine($"{name}: {reference.Text}");

            var plain = new List<double>();
            var fast = new List<double>();
            var ratios = new List<double>();
            var speculation = Settings();
            var identical = true;
            for (var round = 0; round < Rounds; round++)
            {
                var clock = Stopwatch.StartNew();
                plainOptions.Seed = round;
                var a = await model.GenerateAsync(ids, plainOptions);
                plain.Add(a.TokenIds.Count / clock.Elapsed.TotalSeconds);
                clock.Restart();
                var b = await model.GenerateAsync(ids, Speculative(plainOptions, speculation));
                fast.Add(b.TokenIds.Count / clock.Elapsed.TotalSeconds);
                ratios.Add(fast[^1] / plain[^1]);
                identical &= b.TokenIds.SequenceEqual(a.TokenIds) && (temperature > 0 || a.TokenIds.SequenceEqual(reference.TokenIds));
            }

            allIdentical &= identical;
            var (drafted, accepted, runs) = speculation.Counts;
            var steps = Rounds * (long)(newTokens - 1);
            var modelRuns = steps - accepted; // after the prefill every token but the last needs a run, unless it was an accepted draft
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {ids.Length} | {Benchmarks.Median(plain):F0} | {Benchmarks.Median(fast):F0} | {ratios.Min():F2} | {Benchmarks.Median(ratios):F2} | {ratios.Max():F2} | " +
                $"{accepted}/{drafted} ({(drafted == 0 ? 0 : 100.0 * accepted / drafted):F0}%) | {(double)steps / modelRuns:F2} | {Copied(prompt, reference.Text)} chars | {(identical ? "yes" : "NO")} |"));
        }

        return allIdentical ? 0 : 1;
    }

    private static GenerationOptions Speculative(GenerationOptions plain, SpeculativeDecoding speculation) =>
        new() { MaxNewTokens = plain.MaxNewTokens, StopTokenIds = [], Temperature = plain.Temperature, Seed = plain.Seed, Speculation = speculation };

    /// <summary>The passage from <paramref name="from"/> up to <paramref name="to"/>, a blank line, then its first 8 words again.</summary>
    private static string Grounded(string text, string from, string to)
    {
        var start = text.IndexOf(from, StringComparison.Ordinal);
        var passage = text[start..text.IndexOf(to, start, StringComparison.Ordinal)].TrimEnd();
        return Repeat(passage);
    }

    private const string Genesis = "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness. And God called the light Day, and the darkness he called Night. And the evening and the morning were the first day.";

    private const string Psalm23 = "The LORD is my shepherd; I shall not want. He maketh me to lie down in green pastures: he leadeth me beside the still waters. He restoreth my soul: he leadeth me in the paths of righteousness for his name's sake. Yea, though I walk through the valley of the shadow of death, I will fear no evil: for thou art with me; thy rod and thy staff they comfort me. Thou preparest a table before me in the presence of mine enemies: thou anointest my head with oil; my cup runneth over. Surely goodness and mercy shall follow me all the days of my life: and I will dwell in the house of the LORD for ever.";

    private static string Repeat(string passage) => passage + "\n\n" + string.Join(' ', passage.Split(' ').Take(8));

    /// <summary>How many characters of the continuation repeat the passage after its repeated start (the prompt's text after the blank line).</summary>
    private static int Copied(string prompt, string continuation)
    {
        var blank = prompt.LastIndexOf("\n\n", StringComparison.Ordinal);
        if (blank < 0) return 0;
        var start = prompt[(blank + 2)..];
        var expected = prompt[(prompt.IndexOf(start, StringComparison.Ordinal) + start.Length)..blank];
        var n = 0;
        while (n < expected.Length && n < continuation.Length && expected[n] == continuation[n]) n++;
        return n;
    }

}
