namespace OnnxLM.Sampling;

/// <summary>
/// The processors and picker one generation uses, built from <see cref="GenerationOptions"/>: hard rules first
/// (logit bias, suppressed and banned tokens, no-repeat n-grams, minimum new tokens), then the sampler stages in
/// <see cref="GenerationOptions.SamplerOrder"/>, then the user's processors, then the picker.
/// Stateful processors (Mirostat) make a pipeline single-use: build one per sequence.
/// </summary>
internal sealed class SamplingPipeline
{
    private readonly ILogitProcessor[] _processors;
    private readonly ITokenPicker _picker;

    private SamplingPipeline(ILogitProcessor[] processors, ITokenPicker picker)
    {
        _processors = processors;
        _picker = picker;
    }

    public IReadOnlyList<ILogitProcessor> Processors => _processors;

    public ITokenPicker Picker => _picker;

    public static SamplingPipeline Create(GenerationOptions options, IReadOnlyList<int> stopIds, TextTokenizer? tokenizer)
    {
        var processors = new List<ILogitProcessor>();
        if (options.Constraint is { } constraint)
        {
            // First, so no later stage can bring back a token the shape forbids (they only lower or mask).
            processors.Add(new Constraints.ConstraintProcessor(constraint,
                tokenizer ?? throw new ArgumentException("GenerationOptions.Constraint needs the model's tokenizer."), stopIds, tokenizer.VocabularySize));
        }

        if (options.LogitBias.Count > 0) processors.Add(new LogitBiasProcessor(new Dictionary<int, float>(options.LogitBias)));
        if (options.SuppressTokens.Count > 0) processors.Add(new SuppressTokensProcessor(options.SuppressTokens));
        if (options.BannedSequences.Count > 0) processors.Add(new BannedSequencesProcessor(options.BannedSequences));
        if (options.NoRepeatNGramSize > 0) processors.Add(new NoRepeatNGramProcessor(options.NoRepeatNGramSize));
        if (options.MinNewTokens > 0) processors.Add(new MinNewTokensProcessor(options.MinNewTokens, stopIds));

        var sampling = options.Temperature > 0;
        foreach (var stage in options.SamplerOrder)
        {
            switch (stage)
            {
                case SamplerStage.Penalties:
                    if (options.RepetitionPenalty != 1f) processors.Add(new RepetitionPenaltyProcessor(options.RepetitionPenalty));
                    if (options.PresencePenalty != 0 || options.FrequencyPenalty != 0)
                    {
                        processors.Add(new FrequencyPenaltyProcessor(options.PresencePenalty, options.FrequencyPenalty, options.PenaltyWindow, options.PenaltiesCountPrompt));
                    }

                    break;
                case SamplerStage.Dry when options.DryMultiplier > 0:
                    processors.Add(new DryProcessor(options.DryMultiplier, options.DryBase, options.DryAllowedLength,
                        Math.Max(2, options.PenaltyWindow), BreakerIds(tokenizer, options.DrySequenceBreakers)));
                    break;
                case SamplerStage.Temperature when sampling && options.Temperature != 1f:
                    processors.Add(new TemperatureProcessor(options.Temperature));
                    break;
                case SamplerStage.TopK when sampling && options.TopK > 0:
                    processors.Add(new TopKProcessor(options.TopK));
                    break;
                case SamplerStage.TopP when sampling && options.TopP < 1f:
                    processors.Add(new TopPProcessor(options.TopP));
                    break;
                case SamplerStage.MinP when sampling && options.MinP > 0:
                    processors.Add(new MinPProcessor(options.MinP));
                    break;
                case SamplerStage.TypicalP when sampling && options.TypicalP < 1f:
                    processors.Add(new TypicalPProcessor(options.TypicalP));
                    break;
                case SamplerStage.TopNSigma when sampling && options.TopNSigma is { } n:
                    processors.Add(new TopNSigmaProcessor(n));
                    break;
                case SamplerStage.EpsilonCutoff when sampling && options.EpsilonCutoff > 0:
                    processors.Add(new EpsilonCutoffProcessor(options.EpsilonCutoff));
                    break;
                case SamplerStage.EtaCutoff when sampling && options.EtaCutoff > 0:
                    processors.Add(new EtaCutoffProcessor(options.EtaCutoff));
                    break;
                case SamplerStage.Xtc when sampling && options.XtcProbability > 0:
                    processors.Add(new XtcProcessor(options.XtcProbability, options.XtcThreshold));
                    break;
            }
        }

        processors.AddRange(options.LogitProcessors);
        var picker = options.TokenPicker
            ?? (!sampling ? GreedyPicker.Instance
                : options.Mirostat > 0 ? new MirostatPicker(options.Mirostat, options.MirostatTau, options.MirostatEta)
                : CategoricalPicker.Instance);
        return new SamplingPipeline(processors.ToArray(), picker);
    }

    /// <summary>Tokens whose text contains a breaker string (DRY stops matching at them).</summary>
    private static int[] BreakerIds(TextTokenizer? tokenizer, IList<string> breakers)
    {
        if (tokenizer is null || breakers.Count == 0) return [];
        var ids = new List<int>();
        for (var id = 0; id < tokenizer.VocabularySize; id++)
        {
            string text;
            try
            {
                text = tokenizer.Decode([id]);
            }
            catch (ArgumentOutOfRangeException)
            {
                continue; // a hole in the vocabulary
            }

            foreach (var breaker in breakers)
            {
                if (text.Contains(breaker, StringComparison.Ordinal))
                {
                    ids.Add(id);
                    break;
                }
            }
        }

        return ids.ToArray();
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
