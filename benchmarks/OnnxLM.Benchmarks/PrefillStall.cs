using System.Diagnostics;
using OnnxLM;

/// <summary>
/// prefill-stall [folder] [chunk]: what a long prompt joining a running batch costs the rows already decoding. Four greedy
/// requests stream; after their tenth token a prompt of the model's context less 40 tokens joins. Per mode (chunked
/// prefill at the given chunk size, and unchunked: one prefill run), over rounds in turn: the longest gap between two
/// tokens of a running row while the long prompt joins, the running rows' median gap, and the long request's time to
/// first token; every mode's tokens are checked identical.
/// </summary>
internal static class PrefillStall
{
    public static async Task<int> RunAsync(string folder, int chunk)
    {
        using var chunked = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, PrefillChunkSize = chunk });
        using var whole = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu, PrefillChunkSize = 1 << 20 });
        var text = File.ReadAllText(Path.Combine(Benchmarks.RepoRoot(), "tests", "data", "kjv", "revelation.txt"));
        var longPrompt = chunked.Tokenizer.Encode(text)[..(chunked.Info.ContextLength - 40)];
        string[] shortPrompts = ["In the beginning", "And God said", "Blessed are the", "Hear, O Israel"];
        var running = new GenerationOptions { MaxNewTokens = 60, StopTokenIds = [] };
        var joining = new GenerationOptions { MaxNewTokens = 8, StopTokenIds = [] };
        Console.WriteLine($"model: {chunked.Info}");
        Console.WriteLine($"4 running rows (60 new tokens), a {longPrompt.Length}-token prompt joins after their 10th token; chunk {chunk} vs unchunked; {Environment.ProcessorCount} cores");

        var results = new Dictionary<string, List<(double MaxGap, double MedianGap, double Ttft)>>();
        IReadOnlyList<int>[]? reference = null;
        var mismatches = 0;
        for (var round = 0; round < 4; round++)
        {
            foreach (var (name, model) in new[] { ($"chunked ({chunk})", chunked), ("unchunked", whole) })
            {
                var (ids, maxGap, medianGap, ttft) = await RunOnceAsync(model, shortPrompts, longPrompt, running, joining);
                if (round == 0) continue; // warm-up
                reference ??= ids;
                for (var i = 0; i < ids.Length; i++) if (!ids[i].SequenceEqual(reference[i])) mismatches++;
                if (!results.TryGetValue(name, out var list)) results[name] = list = [];
                list.Add((maxGap, medianGap, ttft));
            }
        }

        Console.WriteLine();
        Console.WriteLine("| mode | longest gap of a running row (ms) | median gap (ms) | long prompt's time to first token (ms) |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var (name, list) in results)
        {
            static string Range(IEnumerable<double> values)
            {
                var sorted = values.Order().ToArray();
                return $"{sorted[sorted.Length / 2]:F1} ({sorted[0]:F1}–{sorted[^1]:F1})";
            }

            Console.WriteLine($"| {name} | {Range(list.Select(r => r.MaxGap))} | {Range(list.Select(r => r.MedianGap))} | {Range(list.Select(r => r.Ttft))} |");
        }

        Console.WriteLine();
        Console.WriteLine($"median (min–max) of 3 rounds; tokens identical across modes: {(mismatches == 0 ? "yes" : $"NO ({mismatches})")}");
        return mismatches == 0 ? 0 : 1;
    }

    private static async Task<(IReadOnlyList<int>[] Ids, double MaxGap, double MedianGap, double Ttft)> RunOnceAsync(
        LanguageModel model, string[] shortPrompts, int[] longPrompt, GenerationOptions running, GenerationOptions joining)
    {
        var clock = Stopwatch.StartNew();
        var stamps = shortPrompts.Select(_ => new List<double>()).ToArray();
        var ids = shortPrompts.Select(_ => new List<int>()).ToArray();
        var tenth = new TaskCompletionSource();
        var tasks = shortPrompts.Select((prompt, r) => Task.Run(async () =>
        {
            await foreach (var token in model.GenerateStreamingAsync(prompt, running))
            {
                lock (stamps[r]) stamps[r].Add(clock.Elapsed.TotalMilliseconds);
                ids[r].Add(token.Id);
                if (r == 0 && ids[r].Count == 10) tenth.TrySetResult();
            }
        })).ToArray();
        await tenth.Task;
        var joinedAt = clock.Elapsed.TotalMilliseconds;
        var first = double.NaN;
        var longIds = new List<int>();
        await foreach (var token in model.GenerateStreamingAsync(longPrompt, joining))
        {
            if (double.IsNaN(first)) first = clock.Elapsed.TotalMilliseconds - joinedAt;
            longIds.Add(token.Id);
        }

        await Task.WhenAll(tasks);
        var gaps = new List<double>();
        var maxGap = 0.0;
        foreach (var list in stamps)
        {
            for (var i = 1; i < list.Count; i++)
            {
                var gap = list[i] - list[i - 1];
                gaps.Add(gap);
                if (list[i] >= joinedAt) maxGap = Math.Max(maxGap, gap);
            }
        }

        gaps.Sort();
        return ([.. ids, longIds], maxGap, gaps[gaps.Count / 2], first);
    }
}
