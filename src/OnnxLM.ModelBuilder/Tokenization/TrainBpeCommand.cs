using System.Diagnostics;
using System.Globalization;

namespace OnnxLM.ModelBuilder.Tokenization;

/// <summary>
/// <c>train-bpe &lt;corpus.txt&gt; &lt;out-folder&gt; --vocab-size N [--special "&lt;s&gt;,&lt;/s&gt;"] [--encode in.txt out.bin]...</c>:
/// trains a byte-level BPE tokenizer and optionally encodes text files (one document per line, each wrapped in
/// the first two special tokens) into little-endian uint16 token ids for a training script.
/// </summary>
internal static class TrainBpeCommand
{
    public static int Run(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: train-bpe <corpus.txt> <out-folder> --vocab-size N [--special \"<s>,</s>\"] [--encode <in.txt> <out.bin>]...");
            return 1;
        }

        var corpus = args[0];
        var output = args[1];
        var vocabSize = 4096;
        string[] specials = ["<s>", "</s>"];
        var encodes = new List<(string In, string Out)>();
        for (var i = 2; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--vocab-size": vocabSize = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--special": specials = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); break;
                case "--encode": encodes.Add((args[i + 1], args[i + 2])); i += 2; break;
                default: Console.Error.WriteLine($"train-bpe: unknown option {args[i]}"); return 1;
            }
        }

        if (!File.Exists(corpus))
        {
            Console.Error.WriteLine($"train-bpe: corpus '{corpus}' does not exist.");
            return 1;
        }

        var clock = Stopwatch.StartNew();
        var trainer = new BpeTrainer(specials);
        foreach (var line in File.ReadLines(corpus))
        {
            trainer.AddText(line);
        }

        var model = trainer.Train(vocabSize);
        model.Save(output, specials.ElementAtOrDefault(0), specials.ElementAtOrDefault(1));
        Console.WriteLine($"trained {model.VocabularySize} tokens ({model.Merges.Count} merges) in {clock.Elapsed.TotalSeconds:F1} s -> {output}");

        foreach (var (input, ids) in encodes)
        {
            var count = EncodeFile(model, input, ids, specials);
            Console.WriteLine($"encoded {input}: {count} tokens -> {ids}");
        }

        return 0;
    }

    private static long EncodeFile(BpeModel model, string input, string output, string[] specials)
    {
        var cache = new Dictionary<string, int[]>(StringComparer.Ordinal);
        using var writer = new BinaryWriter(File.Create(output));
        long count = 0;
        foreach (var line in File.ReadLines(input))
        {
            if (specials.Length > 0) { writer.Write((ushort)0); count++; }
            foreach (var word in BpeTrainer.PreTokenize(line))
            {
                if (!cache.TryGetValue(word, out var ids))
                {
                    cache[word] = ids = model.EncodeWord(word);
                }

                foreach (var id in ids)
                {
                    writer.Write(checked((ushort)id));
                    count++;
                }
            }

            if (specials.Length > 1) { writer.Write((ushort)1); count++; }
        }

        return count;
    }
}
