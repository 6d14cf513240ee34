using System.Diagnostics;
using System.Globalization;

namespace OnnxLM.ModelBuilder.Conversion;

/// <summary><c>&lt;hf-folder&gt; &lt;out-folder&gt; [--fp16] [--attentions] [--context-length N]</c>: converts a checkpoint.</summary>
internal static class ConvertCommand
{
    public static int Run(string[] args)
    {
        if (args.Length < 2 || args[0].StartsWith("--", StringComparison.Ordinal))
        {
            Console.Error.WriteLine("usage: OnnxLM.ModelBuilder <hf-folder> <out-folder> [--dtype fp32|fp16] [--attentions] [--context-length N]");
            Console.Error.WriteLine("       OnnxLM.ModelBuilder train-bpe <corpus.txt> <out-folder> --vocab-size N [...]");
            return 1;
        }

        var options = new ModelBuilderOptions();
        for (var i = 2; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--dtype" when i + 1 < args.Length && args[i + 1] is "fp16" or "fp32":
                    options.Float16Weights = args[++i] == "fp16";
                    break;
                case "--fp16": options.Float16Weights = true; break;
                case "--attentions": options.OutputAttentions = true; break;
                case "--context-length" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0:
                    options.ContextLength = n;
                    i++;
                    break;
                default:
                    Console.Error.WriteLine($"unknown or incomplete option {args[i]}");
                    return 1;
            }
        }

        try
        {
            var clock = Stopwatch.StartNew();
            DecoderModelBuilder.Convert(args[0], args[1], options);
            Console.WriteLine($"wrote {args[1]} in {clock.Elapsed.TotalSeconds:F1} s");
            return 0;
        }
        catch (ModelFormatException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}
