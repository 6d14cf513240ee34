using System.Globalization;
using GenAI = Microsoft.ML.OnnxRuntimeGenAI;

/// <summary>
/// ONNX Runtime GenAI set up as every benchmark compares against it: a CPU model (optionally with a fixed intra-op thread
/// count), and a greedy generator of exactly a given number of tokens after a prompt (min_length = max_length, so no early
/// EOS, like OnnxLM's <c>StopTokenIds = []</c>) with the prompt already appended (its prefill has run).
/// </summary>
internal sealed class GenAIGreedy : IDisposable
{
    private readonly GenAI.GeneratorParams _parameters;
    private readonly int _promptLength;

    public GenAIGreedy(GenAI.Model model, int[] prompt, int newTokens)
    {
        _promptLength = prompt.Length;
        _parameters = new GenAI.GeneratorParams(model);
        _parameters.SetSearchOption("max_length", prompt.Length + newTokens);
        _parameters.SetSearchOption("min_length", prompt.Length + newTokens);
        _parameters.SetSearchOption("do_sample", false);
        Generator = new GenAI.Generator(model, _parameters);
        Generator.AppendTokens(prompt);
    }

    public GenAI.Generator Generator { get; }

    /// <summary>The tokens generated after the prompt so far.</summary>
    public int[] NewTokens => Generator.GetSequence(0).ToArray()[_promptLength..];

    /// <summary>Generates to the end and returns the new tokens.</summary>
    public int[] Run()
    {
        while (!Generator.IsDone()) Generator.GenerateNextToken();
        return NewTokens;
    }

    /// <summary>A GenAI model on the CPU; <paramref name="intraOpThreads"/> 0 keeps the folder's (ONNX Runtime's default) thread count.</summary>
    public static GenAI.Model Model(string folder, int intraOpThreads = 0)
    {
        using var config = new GenAI.Config(folder);
        config.ClearProviders();
        if (intraOpThreads > 0)
        {
            config.Overlay("{\"model\":{\"decoder\":{\"session_options\":{\"intra_op_num_threads\":" + intraOpThreads.ToString(CultureInfo.InvariantCulture) + "}}}}");
        }

        return new GenAI.Model(config);
    }

    public void Dispose()
    {
        Generator.Dispose();
        _parameters.Dispose();
    }
}
