namespace OnnxLM.ModelBuilder.Tokenization;

/// <summary>
/// Trains a byte-level BPE tokenizer on a corpus (one document per line) and writes it as tokenizer.json, and
/// encodes text files into little-endian uint16 token ids for a training script, each line wrapped in the first two
/// special tokens. What <c>onnxlm train-bpe</c> runs.
/// </summary>
public static class BpeTraining
{
    /// <summary>Trains and saves the tokenizer; returns it for <see cref="EncodeFile"/>.</summary>
    /// <param name="corpus">The text file to learn from.</param>
    /// <param name="outputFolder">Where tokenizer.json (and its config) go.</param>
    /// <param name="vocabularySize">Tokens in the vocabulary, special tokens and the 256 bytes included.</param>
    /// <param name="specialTokens">Special tokens, ids 0, 1, …; the first two are BOS and EOS.</param>
    /// <exception cref="FileNotFoundException">The corpus does not exist.</exception>
    public static BpeModel Train(string corpus, string outputFolder, int vocabularySize, IReadOnlyList<string> specialTokens)
    {
        if (!File.Exists(corpus)) throw new FileNotFoundException($"The corpus '{corpus}' does not exist.", corpus);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabularySize, 256 + specialTokens.Count);
        var trainer = new BpeTrainer([.. specialTokens]);
        foreach (var line in File.ReadLines(corpus))
        {
            trainer.AddText(line);
        }

        var model = trainer.Train(vocabularySize);
        model.Save(outputFolder, specialTokens.ElementAtOrDefault(0), specialTokens.ElementAtOrDefault(1));
        return model;
    }

    /// <summary>Encodes a text file, one document per line, into uint16 ids; returns how many were written.</summary>
    public static long EncodeFile(BpeModel model, string input, string output, IReadOnlyList<string> specials)
    {
        var cache = new Dictionary<string, int[]>(StringComparer.Ordinal);
        using var writer = new BinaryWriter(File.Create(output));
        long count = 0;
        foreach (var line in File.ReadLines(input))
        {
            if (specials.Count > 0) { writer.Write((ushort)0); count++; }
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

            if (specials.Count > 1) { writer.Write((ushort)1); count++; }
        }

        return count;
    }
}
