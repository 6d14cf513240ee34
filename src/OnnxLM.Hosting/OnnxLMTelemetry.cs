using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace OnnxLM.Hosting;

/// <summary>
/// The names OnnxLM.Hosting reports under: a <see cref="Meter"/> and an <see cref="ActivitySource"/> named
/// <see cref="Name"/>, with instruments and attributes from OpenTelemetry's GenAI semantic conventions.
/// Subscribe with <c>AddMeter("OnnxLM")</c> / <c>AddSource("OnnxLM")</c>.
/// </summary>
public static class OnnxLMTelemetry
{
    /// <summary>The meter and activity source name.</summary>
    public const string Name = "OnnxLM";

    /// <summary>Histogram of tokens per request, <c>{token}</c>, by <c>gen_ai.token.type</c> (<c>input</c>, <c>output</c>).</summary>
    public const string TokenUsage = "gen_ai.client.token.usage";

    /// <summary>Histogram of request duration in seconds, queue wait included.</summary>
    public const string OperationDuration = "gen_ai.client.operation.duration";

    /// <summary>Histogram of seconds from the request to its first output token.</summary>
    public const string TimeToFirstToken = "gen_ai.server.time_to_first_token";

    /// <summary>Histogram of seconds per output token after the first.</summary>
    public const string TimePerOutputToken = "gen_ai.server.time_per_output_token";

    /// <summary>Gauge of requests waiting for a free sequence.</summary>
    public const string QueueLength = "onnxlm.queue.length";

    /// <summary>Histogram of seconds a request waited in the queue.</summary>
    public const string QueueWait = "onnxlm.queue.wait.duration";

    internal static readonly ActivitySource Source = new(Name);
}

/// <summary>One model's instruments, created from the host's <see cref="IMeterFactory"/> when there is one.</summary>
internal sealed class OnnxLMInstruments : IDisposable
{
    /// <summary>
    /// The GenAI semantic conventions' advised buckets for <c>gen_ai.client.operation.duration</c> (seconds), used by every
    /// duration here: an exporter's default buckets (0, 5, 10 … 10000) are meant for milliseconds and would put each request in the first.
    /// </summary>
    internal static readonly double[] SecondBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

    /// <summary>The GenAI semantic conventions' advised buckets for <c>gen_ai.client.token.usage</c>.</summary>
    internal static readonly long[] TokenBuckets = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

    private readonly Meter _meter;
    private readonly bool _ownsMeter;

    public OnnxLMInstruments(IMeterFactory? meterFactory, Func<int> queueLength, KeyValuePair<string, object?>[] tags)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(OnnxLMTelemetry.Name) ?? new Meter(OnnxLMTelemetry.Name);
        Tokens = _meter.CreateHistogram(OnnxLMTelemetry.TokenUsage, "{token}", "Tokens used by a request, input and output", null,
            new InstrumentAdvice<long> { HistogramBucketBoundaries = TokenBuckets });
        Duration = Seconds(OnnxLMTelemetry.OperationDuration, "Duration of a generation request");
        FirstToken = Seconds(OnnxLMTelemetry.TimeToFirstToken, "Time from the request to its first output token");
        PerToken = Seconds(OnnxLMTelemetry.TimePerOutputToken, "Time per output token after the first");
        QueueWait = Seconds(OnnxLMTelemetry.QueueWait, "Time a request waited for a free sequence");
        _meter.CreateObservableGauge(OnnxLMTelemetry.QueueLength, () => new Measurement<int>(queueLength(), tags), "{request}", "Requests waiting for a free sequence");
    }

    public Histogram<long> Tokens { get; }

    public Histogram<double> Duration { get; }

    public Histogram<double> FirstToken { get; }

    public Histogram<double> PerToken { get; }

    public Histogram<double> QueueWait { get; }

    public void Dispose()
    {
        if (_ownsMeter) _meter.Dispose();
    }

    private Histogram<double> Seconds(string name, string description) =>
        _meter.CreateHistogram(name, "s", description, null, new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondBuckets });
}
