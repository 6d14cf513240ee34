using System.Diagnostics;
using System.Globalization;
using OnnxLM;
using GenAI = Microsoft.ML.OnnxRuntimeGenAI;

// dotnet run -c Release --project benchmarks/OnnxLM.Benchmarks -- <command> [model-folder] ...
//   genai-compare [folder] [new-tokens] [prompt]: greedy-decodes the same prompt ids with OnnxLM and ONNX Runtime GenAI
//     on the same folder (CPU), checks the tokens are identical and reports decode throughput of both, in one run.
//   sampling-cost [folder]: per-token cost of sampling pipelines on 32k and 151,936 logit vectors (flat and peaked) vs one decode step of the model.
//   score-throughput [folder]: scoring tokens/s vs one full forward pass over the same tokens.
//   tokenizer-throughput [family ...]: single-thread encode MB/s of OnnxLM vs Hugging Face tokenizers (npm, via
//     build/fixtures/bench_tokenizers.js) on the same ~1 MB text, per tokenizer family, plus a linearity check.
//   tokenizer-mlnet [family ...]: OnnxLM's tokenizers vs Microsoft.ML.Tokenizers on tiktoken (cl100k, o200k) and SentencePiece
//     .model files (BPE, Unigram): exactness on the conformance fixtures and the ~1 MB text, encode MB/s side by side.
//   constraint-cost: per-token cost of JSON, JSON-schema, grammar and regex constraints on 4k/32k/128k vocabularies, cold and warm.
//   soak [generations]: 10,000 generations with RSS and managed heap sampled, 64 concurrent requests checked against
//     running alone, cancellation latency (p50/p99), disposing the model mid-generation (Reliability in RESULTS.md).
//   thread-settings [folder]: decode tokens/s for intra-op thread counts × spinning on/off, 1 and 4 concurrent requests.
//   quantization: kjv-tiny as float32, int8 and int4 (built from the committed model): Revelation bits per byte, weight
//     bytes read per token, decode tokens/s of OnnxLM and GenAI on the same folders, greedy-token agreement, peak RSS.
//   decode [folder ...]: issue 14's side-by-side decode benchmark: OnnxLM's session and generation loops vs a bare
//     RunWithBinding loop and ONNX Runtime GenAI (best of its thread settings) on kjv-tiny, its GQA build and the
//     ../shared models; tokens/s ratios min/median/max, host overhead, managed bytes per token, time to first token.
//   speculative [folder] [--show] [--draft N] [--min-ngram N] [--temperature T]: greedy (or seeded sampled) decoding
//     with prompt-lookup speculation vs plain on input-grounded KJV text (a passage, then its start again): tokens/s ratio min/median/max, draft acceptance,
//     identical-token check.
//   prefill-stall [folder] [chunk]: the longest token gap of 4 running rows while a context-long prompt joins, chunked prefill vs unchunked.
//   concurrency [folder] [new-tokens]: total tokens/s of 1, 4, 8, 16 concurrent greedy requests, one at a time vs
//     unbatched concurrent vs continuous batching (LanguageModelOptions.MaxBatchSize), ratios, identical-output check.
//   choice-scoring [folder]: multiple-choice scoring, continuations of a context batched vs forked, in one run.
//   scale <checkpoint> [--threads 2] [--rounds 3] [--precisions fp32,fp16,int4] ...: issue 29 at 0.5B–1B: <checkpoint>-fp32/-fp16/-int4
//     run by OnnxLM, GenAI (same graph) and LLamaSharp (GGUF written from the same safetensors; Q4_0 by its quantizer):
//     load, peak RSS, prefill, time to first token, decode at 128/2,048, 8 concurrent, sampler and JSON shares, int4 logit
//     error, each decode figure next to the memory-bandwidth limit measured in the same run (benchmarks/scale.sh).
//   chat-template: render time of real chat templates, OnnxLM vs @huggingface/jinja (node), and the prefill a 10-turn
//     ChatSession saves by reusing its cache.
var command = args.Length > 0 ? args[0] : "genai-compare";
if (command == "tokenizer-throughput")
{
    return TokenizerThroughput.Run(args[1..]);
}

if (command == "tokenizer-mlnet")
{
    return TokenizerMlNet.Run(args[1..]);
}

if (command == "chat-template")
{
    return await ChatBenchmark.RunAsync();
}

if (command == "quantization")
{
    return await QuantizationBenchmark.RunAsync(args[1..]);
}

if (command == "speculative")
{
    T Flag<T>(string name, T fallback) where T : IParsable<T> =>
        Array.IndexOf(args, name) is var i and > 0 && i + 1 < args.Length ? T.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    var rest = args.Skip(1).ToList();
    var positional = rest.Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && (i == 0 || rest[i - 1] is not ("--draft" or "--min-ngram" or "--temperature"))).FirstOrDefault();
    return await SpeculativeBenchmark.RunAsync(positional ?? Path.Combine(Benchmarks.RepoRoot(), "models", "kjv-tiny"),
        args.Contains("--show"), Flag("--draft", 10), Flag("--min-ngram", 1), Flag("--temperature", 0f));
}

if (command == "constraint-cost")
{
    return await ConstraintCost.RunAsync();
}

if (command == "thread-settings")
{
    return await ThreadSettings.RunAsync(args.Length > 1 ? args[1] : Path.Combine(Benchmarks.RepoRoot(), "models", "kjv-tiny"));
}

if (command == "scale")
{
    try
    {
        return await ScaleBenchmark.RunAsync(args[1..]);
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine(e.Message);
        return 1;
    }
}

if (command == "speculative-scale")
{
    return await SpeculativeScale.RunAsync(args[1..]);
}

if (command == "step-profile")
{
    return StepProfile.Run(args[1..]);
}

if (command == "decode")
{
    return await DecodeBenchmark.RunAsync(args[1..]);
}

if (command == "concurrency")
{
    return await Concurrency.RunAsync(args.Length > 1 ? args[1] : Path.Combine(Benchmarks.RepoRoot(), "models", "kjv-tiny"),
        args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 64);
}

if (command == "prefill-stall")
{
    return await PrefillStall.RunAsync(args.Length > 1 ? args[1] : Path.Combine(Benchmarks.RepoRoot(), "models", "kjv-tiny"),
        args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 32);
}

if (command == "choice-scoring")
{
    return await Concurrency.ChoiceScoringAsync(args.Length > 1 ? args[1] : Path.Combine(Benchmarks.RepoRoot(), "models", "kjv-tiny"));
}

if (command == "soak-dispose")
{
    return await Soak.DisposeOnlyAsync();
}

if (command == "soak")
{
    return await Soak.RunAsync(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10_000);
}

var folder = args.Length > 1 ? args[1] : Path.Combine(Benchmarks.RepoRoot(), "models", "kjv-tiny");
var newTokens = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 200;
var prompt = args.Length > 3 ? args[3] : "And the LORD said unto Moses,";

switch (command)
{
    case "sampling-cost":
        return Benchmarks.SamplingCost(folder);
    case "score-throughput":
        return await Benchmarks.ScoreThroughputAsync(folder);
    case "genai-compare":
        break;
    default:
        Console.Error.WriteLine("usage: genai-compare|decode|step-profile|speculative-scale|scale|sampling-cost|prefill-stall|speculative|concurrency|choice-scoring|score-throughput|tokenizer-throughput|tokenizer-mlnet|chat-template|constraint-cost|soak|quantization|thread-settings [model-folder] [new-tokens] [prompt]");
        return 1;
}

using var model = LanguageModel.Load(folder, new LanguageModelOptions { ExecutionProvider = ExecutionProvider.Cpu });
var ids = model.Tokenizer.Encode(prompt);
Console.WriteLine($"model: {model.Info}");
Console.WriteLine($"prompt: \"{prompt}\" ({ids.Length} tokens), {newTokens} new tokens, greedy, CPU, {Environment.ProcessorCount} cores");

var options = new GenerationOptions { MaxNewTokens = newTokens, StopTokenIds = [] };
using var genaiModel = GenAIGreedy.Model(folder);
int[] RunGenAI(int count)
{
    using var greedy = new GenAIGreedy(genaiModel, ids, count);
    return greedy.Run();
}

// Warm both up for a second each (the JIT's optimized tier for OnnxLM), then alternate five timed runs and keep the medians.
var clock = Stopwatch.StartNew();
while (clock.ElapsedMilliseconds < 1000) await model.GenerateAsync(ids, options);
clock.Restart();
while (clock.ElapsedMilliseconds < 1000) RunGenAI(newTokens);
GenerationResult ours = null!;
int[] theirs = [];
var oursTimes = new List<double>();
var theirsTimes = new List<double>();
for (var run = 0; run < 5; run++)
{
    clock.Restart();
    ours = await model.GenerateAsync(ids, options);
    oursTimes.Add(clock.Elapsed.TotalSeconds);
    clock.Restart();
    theirs = RunGenAI(newTokens);
    theirsTimes.Add(clock.Elapsed.TotalSeconds);
}

var oursSeconds = oursTimes.Order().ElementAt(2);
var theirsSeconds = theirsTimes.Order().ElementAt(2);
var same = ours.TokenIds.SequenceEqual(theirs);
Console.WriteLine($"OnnxLM            : {ours.TokenIds.Count} tokens in {oursSeconds:F3} s = {ours.TokenIds.Count / oursSeconds:F1} tokens/s (prefill included)");
Console.WriteLine($"ONNX Runtime GenAI: {theirs.Length} tokens in {theirsSeconds:F3} s = {theirs.Length / theirsSeconds:F1} tokens/s (prefill included)");
Console.WriteLine($"speed ratio OnnxLM / GenAI: {theirsSeconds / oursSeconds:F2}x");
Console.WriteLine($"identical greedy tokens: {same}");
if (!same)
{
    var first = ours.TokenIds.Zip(theirs).TakeWhile(p => p.First == p.Second).Count();
    Console.WriteLine($"first difference at generated token {first}");
}

Console.WriteLine($"text: {prompt}{ours.Text}");
return same ? 0 : 2;
