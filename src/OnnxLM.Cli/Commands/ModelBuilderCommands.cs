using System.CommandLine;
using System.Diagnostics;
using OnnxLM.ModelBuilder;
using OnnxLM.ModelBuilder.Tokenization;

namespace OnnxLM.Cli.Commands;

/// <summary>The model builder's commands: <c>convert</c> (a Hugging Face checkpoint to an ONNX model folder) and <c>train-bpe</c>.</summary>
internal static class ModelBuilderCommands
{
    public static Command Convert(CliContext cli)
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "A Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer files)" };
        var output = new Argument<string>("output") { Description = "The model folder to write" };
        var dtype = new Option<string>("--dtype") { Description = "Weight storage: fp32 or fp16", DefaultValueFactory = _ => "fp32" };
        dtype.AcceptOnlyFromAmong("fp32", "fp16");
        var attentions = new Option<bool>("--attentions") { Description = "Also output the attention weights of every layer (for explain views)" };
        var contextLength = new Option<int?>("--context-length") { Description = "Context length to record (default: the checkpoint's)" };
        var command = new Command("convert", "Build an ONNX model folder (GPT-2, Llama family) from a Hugging Face checkpoint") { checkpoint, output, dtype, attentions, contextLength };
        command.SetAction((parse, ct) => cli.RunAsync(parse, () =>
        {
            if (parse.GetValue(contextLength) is < 1) throw new UsageException("--context-length must be positive.");
            var clock = Stopwatch.StartNew();
            DecoderModelBuilder.Convert(parse.GetValue(checkpoint)!, parse.GetValue(output)!, new ModelBuilderOptions
            {
                Float16Weights = parse.GetValue(dtype) == "fp16",
                OutputAttentions = parse.GetValue(attentions),
                ContextLength = parse.GetValue(contextLength),
            });
            cli.Output.WriteLine(FormattableString.Invariant($"wrote {parse.GetValue(output)} in {clock.Elapsed.TotalSeconds:F1} s"));
            return Task.FromResult(0);
        }));
        return command;
    }

    public static Command TrainBpe(CliContext cli)
    {
        var corpus = new Argument<string>("corpus") { Description = "A text file, one document per line" };
        var output = new Argument<string>("output") { Description = "The folder to write tokenizer.json to" };
        var vocabSize = new Option<int>("--vocab-size") { Description = "Vocabulary size, the 256 bytes and special tokens included", DefaultValueFactory = _ => 4096 };
        var special = new Option<string>("--special") { Description = "Comma-separated special tokens (ids 0, 1, ...; the first two are BOS and EOS)", DefaultValueFactory = _ => "<s>,</s>" };
        var encode = new Option<string[]>("--encode") { Description = "Also encode <in.txt> <out.bin> to uint16 ids (repeatable)", Arity = new ArgumentArity(2, 2), AllowMultipleArgumentsPerToken = true };
        var command = new Command("train-bpe", "Train a byte-level BPE tokenizer on a corpus") { corpus, output, vocabSize, special, encode };
        command.SetAction((parse, ct) => cli.RunAsync(parse, () =>
        {
            var specials = parse.GetValue(special)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var clock = Stopwatch.StartNew();
            var model = BpeTraining.Train(parse.GetValue(corpus)!, parse.GetValue(output)!, parse.GetValue(vocabSize), specials);
            cli.Output.WriteLine(FormattableString.Invariant($"trained {model.VocabularySize} tokens ({model.Merges.Count} merges) in {clock.Elapsed.TotalSeconds:F1} s -> {parse.GetValue(output)}"));
            var pairs = parse.GetValue(encode) ?? [];
            for (var i = 0; i + 1 < pairs.Length; i += 2)
            {
                var count = BpeTraining.EncodeFile(model, pairs[i], pairs[i + 1], specials);
                cli.Output.WriteLine($"encoded {pairs[i]}: {count} tokens -> {pairs[i + 1]}");
            }

            return Task.FromResult(0);
        }));
        return command;
    }
}
