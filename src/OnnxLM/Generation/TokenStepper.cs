using System.Diagnostics;
using OnnxLM.Sampling;

namespace OnnxLM;

/// <summary>
/// The per-token logic of one generated sequence, shared by the plain decoding loop (<see cref="Generator.Decode"/>) and the
/// batched one (<see cref="BatchScheduler"/>): sampling pipeline, stop ids, length and time limits, stop sequences,
/// streaming text and the chosen token's log-probability. It never runs the model: the caller hands in the logits
/// of the next position and appends the returned id to the sequence (unless it finished).
/// </summary>
internal sealed class TokenStepper
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly IReadOnlyList<int> _stopIds;
    private readonly GenerationOptions _options;
    private readonly SamplingPipeline _pipeline;
    private readonly StreamingDecoder? _decoder;
    private readonly TextTokenizer? _tokenizer;
    private readonly StopSequenceMatcher _stops;
    private readonly SamplingContext _context;
    private readonly int[] _history;
    private readonly float[] _logits;
    private readonly float[] _scratch;
    private readonly int _promptLength;
    private readonly int _maxLength;
    private int _length;

    /// <summary>
    /// Validates <paramref name="options"/> and prepares the step for a sequence that holds <paramref name="tokens"/> (the prompt,
    /// possibly after earlier turns) and may grow to <paramref name="maxLength"/>. Stops at <see cref="GenerationOptions.StopTokenIds"/>,
    /// else <paramref name="defaultStops"/>, else the model's EOS.
    /// </summary>
    public TokenStepper(ModelRuntime model, ReadOnlySpan<int> tokens, int[] prompt, int maxLength, GenerationOptions options, IReadOnlyList<int>? defaultStops)
    {
        _stopIds = options.StopTokenIds ?? defaultStops ?? model.Info.EosTokenIds;
        options.Validate(model.Info.VocabularySize, options.StopTokenIds ?? []);
        _options = options;
        var tokenizer = model.HasTokenizer ? model.Tokenizer : null;
        _tokenizer = tokenizer;
        _pipeline = SamplingPipeline.Create(options, _stopIds, tokenizer);
        _decoder = tokenizer?.CreateStreamingDecoder(skipSpecialTokens: true);
        _decoder?.Prime(prompt.Where(id => id < tokenizer!.VocabularySize).ToArray());
        _stops = new StopSequenceMatcher(options.StopSequences);
        var random = options.Seed is { } seed ? new Random(seed) : new Random();
        _context = new SamplingContext(random, prompt.Length);
        _promptLength = prompt.Length;
        _maxLength = maxLength;
        _history = new int[maxLength];
        tokens.CopyTo(_history);
        _length = tokens.Length;
        _logits = new float[model.Info.VocabularySize];
        _scratch = new float[_logits.Length];
    }

    /// <summary>The sequence so far: the tokens it started with and every token chosen since.</summary>
    public ReadOnlySpan<int> Tokens => _history.AsSpan(0, _length);

    /// <summary>The most tokens the sequence may hold.</summary>
    public int MaxLength => _maxLength;

    /// <summary>Tokens chosen so far (beyond the prompt).</summary>
    public int GeneratedCount => _length - _promptLength;

    /// <summary>
    /// Chooses the next token from the raw logits of the next position and returns it with its text and log-probability;
    /// a token with a <see cref="GeneratedToken.FinishReason"/> is the sequence's last (do not append it to the model).
    /// </summary>
    public GeneratedToken Next(ReadOnlySpan<float> raw)
    {
        raw.CopyTo(_logits);
        _context.SetTokens(_history, _length);
        var id = _pipeline.Choose(_logits, _context);
        var (max, logSum) = SamplingMath.LogSoftmaxTerms(raw, _scratch);
        var logProb = SamplingMath.LogProbOf(raw, id, max, logSum);
        var top = _options.TopLogProbs > 0 ? TopLogProbs(raw, max, logSum) : [];
        _history[_length++] = id;

        FinishReason? finish = null;
        string text;
        if (Contains(_stopIds, id))
        {
            finish = FinishReason.Stop;
            text = _decoder?.Flush() ?? string.Empty;
        }
        else
        {
            text = _decoder?.Append(id) ?? string.Empty;
            if (_length - _promptLength >= _options.MaxNewTokens || _length >= _maxLength)
            {
                finish = FinishReason.Length;
            }
            else if (_options.MaxTime is { } limit && _clock.Elapsed >= limit)
            {
                finish = FinishReason.TimeLimit;
            }

            if (finish is not null)
            {
                text += _decoder?.Flush() ?? string.Empty;
            }
        }

        if (_stops.IsActive)
        {
            var (emit, stop) = _stops.Push(text);
            if (stop is not null)
            {
                return new GeneratedToken(id, emit, logProb, FinishReason.Stop) { TopLogProbs = top };
            }

            text = finish is null ? emit : emit + _stops.Flush();
        }

        return new GeneratedToken(id, text, logProb, finish) { TopLogProbs = top };
    }

    /// <summary>The most likely tokens of the raw distribution, from the same log-softmax terms as the chosen token's log-probability.</summary>
    private TokenAlternative[] TopLogProbs(ReadOnlySpan<float> raw, float max, float logSum)
    {
        var ids = SamplingMath.TopIds(raw, _options.TopLogProbs);
        var top = new TokenAlternative[ids.Length];
        for (var k = 0; k < ids.Length; k++)
        {
            top[k] = new TokenAlternative(ids[k], PieceText(ids[k]), SamplingMath.LogProbOf(raw, ids[k], max, logSum));
        }

        return top;
    }

    private string PieceText(int id)
    {
        if (_tokenizer is null) return string.Empty;
        try
        {
            return _tokenizer.TokenText(id);
        }
        catch (ArgumentOutOfRangeException)
        {
            return string.Empty; // an id the tokenizer does not cover (a head larger than the vocabulary)
        }
    }

    private static bool Contains(IReadOnlyList<int> ids, int id)
    {
        for (var i = 0; i < ids.Count; i++)
        {
            if (ids[i] == id)
            {
                return true;
            }
        }

        return false;
    }
}
