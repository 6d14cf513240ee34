namespace OnnxLM;

/// <summary>Logit processors in order, then one picker, as configured by <see cref="GenerationOptions"/>.</summary>
internal sealed class SamplingPipeline
{
    private readonly ILogitProcessor[] _processors;
    private readonly ITokenPicker _picker;

    private SamplingPipeline(ILogitProcessor[] processors, ITokenPicker picker)
    {
        _processors = processors;
        _picker = picker;
    }

    public static SamplingPipeline Create(GenerationOptions options)
    {
        var processors = new List<ILogitProcessor>();
        var sampling = options.Temperature > 0;
        if (sampling)
        {
            // Hugging Face order: temperature, then top-k, then top-p.
            if (options.Temperature != 1f) processors.Add(new TemperatureProcessor(options.Temperature));
            if (options.TopK > 0) processors.Add(new TopKProcessor(options.TopK));
            if (options.TopP < 1f) processors.Add(new TopPProcessor(options.TopP));
        }

        processors.AddRange(options.LogitProcessors);
        var picker = options.TokenPicker ?? (sampling ? CategoricalPicker.Instance : GreedyPicker.Instance);
        return new SamplingPipeline(processors.ToArray(), picker);
    }

    public int Choose(Span<float> logits, SamplingContext context)
    {
        foreach (var processor in _processors)
        {
            processor.Process(logits, context);
        }

        var id = _picker.Pick(logits, context);
        if ((uint)id >= (uint)logits.Length)
        {
            throw new InvalidOperationException($"The token picker {_picker.GetType().Name} returned id {id}, outside the vocabulary of {logits.Length}.");
        }

        return id;
    }
}
