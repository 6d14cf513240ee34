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
        var attention = new Option<string>("--attention")
        {
            Description = "Attention operators: auto (gqa for models of 100M parameters or more, standard below), standard (ONNX ops, every "
                + "provider and every explain view) or gqa (one com.microsoft.GroupQueryAttention per layer; the cache appends in place in "
                + "one shared buffer: at the 1B shape, decoding at a 2,048-token context is about twice as fast)",
            DefaultValueFactory = _ => "auto",
        };
        attention.AcceptOnlyFromAmong("auto", "standard", "gqa");
        var contextLength = new Option<int?>("--context-length") { Description = "Context length to record (default: the checkpoint's)" };
        var quantize = new Option<string?>("--quantize") { Description = "Quantize the projection, MLP and output weights: int4 or int8 (MatMulNBits)" };
        quantize.AcceptOnlyFromAmong("int4", "int8");
        var blockSize = new Option<int>("--block-size") { Description = "Weights per quantization block: 16, 32, 64, 128 or 256", DefaultValueFactory = _ => 32 };
        var zeroPoints = new Option<bool>("--zero-points") { Description = "Store a zero point per block (asymmetric) instead of symmetric blocks" };
        var method = new Option<string>("--quant-method") { Description = "Block scales: rtn (round to nearest) or search (least squared error)", DefaultValueFactory = _ => "rtn" };
        method.AcceptOnlyFromAmong("rtn", "search");
        var floatHead = new Option<bool>("--float-head") { Description = "Keep the output projection (lm_head) in float (--dtype) precision" };
        var accuracy = new Option<int>("--accuracy-level") { Description = "MatMulNBits accuracy_level: 0 ONNX Runtime's choice, 1 fp32, 2 fp16, 3 bf16, 4 int8 activations (fastest on CPU)", DefaultValueFactory = _ => 4 };
        blockSize.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is not (16 or 32 or 64 or 128 or 256)) r.AddError($"--block-size must be 16, 32, 64, 128 or 256 (found {r.GetValueOrDefault<int>()}).");
        });
        accuracy.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is not (>= 0 and <= 4)) r.AddError($"--accuracy-level must be between 0 and 4 (found {r.GetValueOrDefault<int>()}).");
        });
        var command = new Command("convert", "Build an ONNX model folder (GPT-2, Llama family) from a Hugging Face checkpoint or a float folder built here")
        {
            checkpoint, output, dtype, attention, attentions, contextLength, quantize, blockSize, zeroPoints, method, floatHead, accuracy,
        };
        command.SetAction((parse, ct) => cli.RunAsync(parse, () =>
        {
            if (parse.GetValue(contextLength) is < 1) throw new UsageException("--context-length must be positive.");
            if (parse.GetValue(attention) == "gqa" && parse.GetValue(attentions))
            {
                throw new UsageException("--attentions needs --attention standard: a GroupQueryAttention node does not output the attention weights.");
            }

            var quantization = parse.GetValue(quantize) is { } bits ? WeightQuantization.Parse(bits) : null;
            if (quantization is null && (parse.GetResult(blockSize) is { Implicit: false } || parse.GetValue(zeroPoints) || parse.GetValue(floatHead)
                || parse.GetResult(method) is { Implicit: false } || parse.GetResult(accuracy) is { Implicit: false }))
            {
                throw new UsageException("--block-size, --zero-points, --quant-method, --float-head and --accuracy-level need --quantize int4 or int8.");
            }

            if (quantization is not null)
            {
                quantization.BlockSize = parse.GetValue(blockSize);
                quantization.AccuracyLevel = parse.GetValue(accuracy);
                quantization.Symmetric = !parse.GetValue(zeroPoints);
                quantization.Method = parse.GetValue(method) == "search" ? QuantizationMethod.ScaleSearch : QuantizationMethod.RoundToNearest;
                quantization.QuantizeOutputProjection = !parse.GetValue(floatHead);
            }

            // Usage is checked; now the checkpoint's config decides --attention auto (with --attentions it stays standard).
            var choice = parse.GetValue(attention);
            var auto = choice == "auto" && !parse.GetValue(attentions) ? DecoderConfig.Load(parse.GetValue(checkpoint)!) : null;
            var groupQuery = choice == "gqa" || (auto is not null && PrefersGroupQuery(auto));
            var clock = Stopwatch.StartNew();
            DecoderModelBuilder.Convert(parse.GetValue(checkpoint)!, parse.GetValue(output)!, new ModelBuilderOptions
            {
                Float16Weights = parse.GetValue(dtype) == "fp16",
                OutputAttentions = parse.GetValue(attentions),
                Attention = groupQuery ? AttentionOperator.GroupQuery : AttentionOperator.Standard,
                ContextLength = parse.GetValue(contextLength),
                Quantization = quantization,
                LogitsToKeepInput = true, // a prefill computes the output projection for its last position only
            });
            var bytes = new DirectoryInfo(parse.GetValue(output)!).EnumerateFiles("model.onnx*").Sum(f => f.Length);
            cli.Output.WriteLine(FormattableString.Invariant(
                $"wrote {parse.GetValue(output)} in {clock.Elapsed.TotalSeconds:F1} s ({bytes / 1e6:F1} MB{(quantization is null ? "" : $", {quantization}")}{(groupQuery ? ", GroupQueryAttention" : "")}{(groupQuery && auto is not null ? $" chosen by --attention auto for {ParameterCount(auto) / 1e6:F0}M parameters; --attention standard keeps every explain view" : "")})"));
            return Task.FromResult(0);
        }));
        return command;
    }

    /// <summary>The parameters from which <c>--attention auto</c> writes GroupQueryAttention.</summary>
    internal const long GroupQueryFromParameters = 100_000_000;

    /// <summary>
    /// <c>--attention auto</c>: GroupQueryAttention for models people run (decoding over a long context is where it pays:
    /// one fused kernel reading the cache in place), standard operators for small models, which are for learning and
    /// testing and whose explain views need the attention probabilities. The operator needs a head size that is a multiple of 8.
    /// </summary>
    internal static bool PrefersGroupQuery(DecoderConfig config) => config.HeadSize % 8 == 0 && ParameterCount(config) >= GroupQueryFromParameters;

    /// <summary>The weights of a config's projections and embeddings (norms and biases, a rounding error here, left out).</summary>
    internal static long ParameterCount(DecoderConfig c)
    {
        long hidden = c.HiddenSize, heads = (long)c.AttentionHeadCount * c.HeadSize, kv = (long)c.KeyValueHeadCount * c.HeadSize;
        var attention = hidden * (heads + 2 * kv) + heads * hidden;
        var mlp = (c.ModelType == "gpt2" ? 2 : 3) * hidden * c.IntermediateSize;
        var embeddings = (c.TieWordEmbeddings ? 1 : 2) * (long)c.VocabularySize * hidden + (c.ModelType == "gpt2" ? (long)c.MaxPositions * hidden : 0);
        return embeddings + c.LayerCount * (attention + mlp);
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
