using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using OnnxLM.Hosting;

namespace OnnxLM.Server;

/// <summary>
/// The <c>/metrics</c> page: every instrument of the <see cref="OnnxLMTelemetry.Name"/> meter of this application, kept
/// cumulatively and written in Prometheus's text exposition format (version 0.0.4).
/// </summary>
/// <remarks>
/// A <see cref="MeterListener"/> of our own, so that the server needs no prerelease exporter package. It listens only to
/// meters from this application's <see cref="IMeterFactory"/> (when it has one), so two servers in one process — the
/// tests start several — each report their own requests. Names follow OpenTelemetry's Prometheus conversion: dots become
/// underscores, the unit is appended (<c>s</c> as <c>_seconds</c>, annotations such as <c>{token}</c> dropped) and
/// counters end in <c>_total</c>; histograms use the instrument's advised buckets, else the GenAI semantic conventions'
/// buckets for token counts and durations, else OpenTelemetry's defaults.
/// </remarks>
internal sealed class PrometheusMetrics : IDisposable
{
    /// <summary>The content type of the text exposition format.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    // OpenTelemetry's default explicit buckets.
    private static readonly double[] DefaultBuckets = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];

    // The GenAI semantic conventions' advice for gen_ai.client.token.usage and gen_ai.client.operation.duration.
    private static readonly double[] TokenBuckets = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
    private static readonly double[] SecondBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

    private readonly MeterListener _listener = new();
    private readonly object _gate = new();
    private readonly ConcurrentDictionary<string, Family> _families = new(StringComparer.Ordinal);
    private readonly string _scopeLabel;

    /// <summary>Starts listening to the <paramref name="meterName"/> meters of <paramref name="meterFactory"/> (of any factory when null).</summary>
    public PrometheusMetrics(IMeterFactory? meterFactory, string meterName = OnnxLMTelemetry.Name)
    {
        // OpenTelemetry's exporter names the meter on every series; dashboards written against it keep working.
        var scope = new StringBuilder("otel_scope_name=\"");
        AppendEscaped(scope, meterName, quote: true);
        _scopeLabel = scope.Append('"').ToString();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name != meterName || meterFactory is not null && !ReferenceEquals(instrument.Meter.Scope, meterFactory)) return;
            listener.EnableMeasurementEvents(instrument, FamilyOf(instrument));
        };
        _listener.SetMeasurementEventCallback<byte>((i, v, tags, state) => Record(state, v, tags));
        _listener.SetMeasurementEventCallback<short>((i, v, tags, state) => Record(state, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, state) => Record(state, v, tags));
        _listener.SetMeasurementEventCallback<long>((i, v, tags, state) => Record(state, v, tags));
        _listener.SetMeasurementEventCallback<float>((i, v, tags, state) => Record(state, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, state) => Record(state, v, tags));
        _listener.SetMeasurementEventCallback<decimal>((i, v, tags, state) => Record(state, (double)v, tags));
        _listener.Start();
    }

    /// <summary>The metrics now, in the text exposition format; observable instruments are read first.</summary>
    public string Scrape()
    {
        // Outside the lock: a gauge's callback may wait on a lock of its own that a thread recording a measurement holds.
        _listener.RecordObservableInstruments();
        lock (_gate)
        {
            var text = new StringBuilder();
            foreach (var family in _families.Values.OrderBy(f => f.Name, StringComparer.Ordinal)) family.Write(text);
            return text.ToString();
        }
    }

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();

    private Family FamilyOf(Instrument instrument)
    {
        var type = instrument switch
        {
            Counter<byte> or Counter<short> or Counter<int> or Counter<long> or Counter<float> or Counter<double> or Counter<decimal> => Kind.Counter,
            ObservableCounter<byte> or ObservableCounter<short> or ObservableCounter<int> or ObservableCounter<long> or ObservableCounter<float>
                or ObservableCounter<double> or ObservableCounter<decimal> => Kind.ObservedCounter,
            Histogram<byte> or Histogram<short> or Histogram<int> or Histogram<long> or Histogram<float> or Histogram<double> or Histogram<decimal> => Kind.Histogram,
            UpDownCounter<byte> or UpDownCounter<short> or UpDownCounter<int> or UpDownCounter<long> or UpDownCounter<float> or UpDownCounter<double>
                or UpDownCounter<decimal> => Kind.SumGauge,
            _ => Kind.Gauge, // Gauge<T>, ObservableGauge<T>, ObservableUpDownCounter<T>: the last value is the value
        };
        var name = MetricName(instrument.Name, instrument.Unit, type is Kind.Counter or Kind.ObservedCounter);
        // Instruments of one name (each model host creates its own) share one family; their tags tell the series apart.
        return _families.GetOrAdd(name, _ => new Family(name, instrument.Description, type, type == Kind.Histogram ? Buckets(instrument) : []));
    }

    private void Record(object? state, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (state is not Family family) return;
        var labels = Labels(_scopeLabel, tags);
        lock (_gate) family.Record(labels, value);
    }

    private static double[] Buckets(Instrument instrument)
    {
        var advised = instrument switch
        {
            Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<double> h => h.Advice?.HistogramBucketBoundaries?.ToArray(),
            Histogram<float> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            _ => null,
        };
        if (advised is { Length: > 0 }) return advised;
        if (instrument.Name == OnnxLMTelemetry.TokenUsage) return TokenBuckets;
        return instrument.Unit == "s" ? SecondBuckets : DefaultBuckets;
    }

    /// <summary>The Prometheus name of an instrument: <c>gen_ai.client.operation.duration</c> in <c>s</c> is <c>gen_ai_client_operation_duration_seconds</c>.</summary>
    internal static string MetricName(string instrument, string? unit, bool counter)
    {
        var name = Sanitize(instrument, allowColon: true);
        var suffix = unit switch
        {
            null or "" => "",
            "s" => "seconds",
            "ms" => "milliseconds",
            "By" => "bytes",
            "1" => "",
            _ => Sanitize(System.Text.RegularExpressions.Regex.Replace(unit, @"\{[^}]*\}", ""), allowColon: false).Trim('_'),
        };
        if (suffix.Length > 0 && !name.EndsWith("_" + suffix, StringComparison.Ordinal)) name += "_" + suffix;
        if (counter && !name.EndsWith("_total", StringComparison.Ordinal)) name += "_total";
        return name;
    }

    /// <summary>A name with every character outside <c>[a-zA-Z0-9_]</c> (and <c>:</c> where allowed) as <c>_</c>, never starting with a digit.</summary>
    private static string Sanitize(string name, bool allowColon)
    {
        var result = new StringBuilder(name.Length + 1);
        foreach (var c in name) result.Append(char.IsAsciiLetterOrDigit(c) || c == '_' || allowColon && c == ':' ? c : '_');
        if (result.Length == 0 || char.IsAsciiDigit(result[0])) result.Insert(0, '_');
        return result.ToString();
    }

    /// <summary>The series' labels: the scope, then the tags sorted by name, written as <c>{otel_scope_name="OnnxLM",a="1",b="x"}</c>.</summary>
    private static string Labels(string scope, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var pairs = new List<(string Name, string Value)>(tags.Length);
        foreach (var tag in tags)
        {
            var value = tag.Value switch
            {
                null => "",
                bool b => b ? "true" : "false",
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                var other => other.ToString() ?? "",
            };
            pairs.Add((Sanitize(tag.Key, allowColon: false), value));
        }

        pairs.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        var text = new StringBuilder("{").Append(scope);
        for (var i = 0; i < pairs.Count; i++)
        {
            text.Append(',').Append(pairs[i].Name).Append("=\"");
            AppendEscaped(text, pairs[i].Value, quote: true);
            text.Append('"');
        }

        return text.Append('}').ToString();
    }

    /// <summary>
    /// Escapes as the format asks: a backslash and a line feed in HELP text and label values, and a double quote in label values.
    /// </summary>
    private static void AppendEscaped(StringBuilder text, string value, bool quote)
    {
        foreach (var c in value)
        {
            _ = c switch
            {
                '\\' => text.Append(@"\\"),
                '\n' => text.Append(@"\n"),
                '"' when quote => text.Append("\\\""),
                _ => text.Append(c),
            };
        }
    }

    private static string Number(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf" : double.IsNaN(value) ? "NaN" : value.ToString("R", CultureInfo.InvariantCulture);

    private enum Kind
    {
        Counter,
        ObservedCounter,
        Histogram,
        SumGauge,
        Gauge,
    }

    /// <summary>One metric name: its type, help, and one series per label set.</summary>
    private sealed class Family(string name, string? help, Kind kind, double[] buckets)
    {
        private readonly Dictionary<string, Series> _series = new(StringComparer.Ordinal);

        public string Name { get; } = name;

        public void Record(string labels, double value)
        {
            if (!_series.TryGetValue(labels, out var series)) _series.Add(labels, series = new Series(buckets.Length));
            switch (kind)
            {
                case Kind.Counter or Kind.SumGauge:
                    series.Value += value;
                    break;
                case Kind.Histogram:
                    series.Sum += value;
                    series.Count++;
                    var bucket = 0;
                    while (bucket < buckets.Length && value > buckets[bucket]) bucket++;
                    if (bucket < buckets.Length) series.Buckets[bucket]++;
                    break;
                default:
                    series.Value = value;
                    break;
            }
        }

        public void Write(StringBuilder text)
        {
            if (_series.Count == 0) return;
            if (!string.IsNullOrEmpty(help))
            {
                text.Append("# HELP ").Append(Name).Append(' ');
                AppendEscaped(text, help, quote: false);
                text.Append('\n');
            }

            text.Append("# TYPE ").Append(Name).Append(' ').Append(kind switch
            {
                Kind.Counter or Kind.ObservedCounter => "counter",
                Kind.Histogram => "histogram",
                _ => "gauge",
            }).Append('\n');
            foreach (var (labels, series) in _series.OrderBy(s => s.Key, StringComparer.Ordinal))
            {
                if (kind != Kind.Histogram)
                {
                    text.Append(Name).Append(labels).Append(' ').Append(Number(series.Value)).Append('\n');
                    continue;
                }

                // Buckets are cumulative: each counts every value at or below its bound; +Inf counts them all.
                long cumulative = 0;
                for (var i = 0; i < buckets.Length; i++)
                {
                    cumulative += series.Buckets[i];
                    Bucket(text, labels, Number(buckets[i]), cumulative);
                }

                Bucket(text, labels, "+Inf", series.Count);
                text.Append(Name).Append("_sum").Append(labels).Append(' ').Append(Number(series.Sum)).Append('\n');
                text.Append(Name).Append("_count").Append(labels).Append(' ').Append(series.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }

        private void Bucket(StringBuilder text, string labels, string bound, long count)
        {
            var le = $"le=\"{bound}\"";
            text.Append(Name).Append("_bucket").Append(labels[..^1]).Append(',').Append(le).Append('}')
                .Append(' ').Append(count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
    }

    private sealed class Series(int buckets)
    {
        public double Value { get; set; }

        public double Sum { get; set; }

        public long Count { get; set; }

        public long[] Buckets { get; } = new long[buckets];
    }
}
