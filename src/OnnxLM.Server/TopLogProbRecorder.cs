using OnnxLM.Sampling;

namespace OnnxLM.Server;

/// <summary>Records, step by step, the most likely tokens of the distribution the sampler draws from (for <c>top_logprobs</c>).</summary>
internal sealed class TopLogProbRecorder(int k) : ILogitProcessor
{
    public List<(int Id, double LogProb)[]> Steps { get; } = [];

    public void Process(Span<float> logits, SamplingContext context)
    {
        var max = float.NegativeInfinity;
        foreach (var x in logits) max = Math.Max(max, x);
        double sum = 0;
        foreach (var x in logits)
        {
            if (!float.IsNegativeInfinity(x)) sum += Math.Exp(x - max);
        }

        var logZ = max + Math.Log(sum);
        var top = new List<(int, double)>(k);
        var copy = logits.ToArray();
        for (var n = 0; n < k; n++)
        {
            var best = -1;
            for (var i = 0; i < copy.Length; i++)
            {
                if (!float.IsNegativeInfinity(copy[i]) && (best < 0 || copy[i] > copy[best])) best = i;
            }

            if (best < 0) break;
            top.Add((best, copy[best] - logZ));
            copy[best] = float.NegativeInfinity;
        }

        Steps.Add([.. top]);
    }
}
