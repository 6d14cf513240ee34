namespace OnnxLM.Explain;

// What the explain views return: plain records, so they serialize to JSON as they are.

/// <summary>One byte-pair merge: two adjacent pieces joined into <see cref="Result"/>; lower ranks were learned earlier and merge first.</summary>
public sealed record MergeStep(string Left, string Right, string Result, int Rank);

/// <summary>A pre-tokenized word and the merges that turned its characters (or bytes) into tokens, in order.</summary>
public sealed record WordMerges(string Word, IReadOnlyList<MergeStep> Merges);

/// <summary>A token of the text: id, vocabulary piece, the text it covers and where (UTF-16 and UTF-8 offsets).</summary>
public sealed record ExplainedToken(int Id, string Piece, string Text, int Start, int Length, int ByteStart, int ByteLength, bool IsSpecial);

/// <summary>How a text becomes tokens: the merges per word and the resulting tokens.</summary>
public sealed record TokenizationExplanation(string Text, IReadOnlyList<WordMerges> Words, IReadOnlyList<ExplainedToken> Tokens);

/// <summary>A candidate next token and its probability.</summary>
public sealed record TokenProbability(int Id, string Text, double Probability);

/// <summary>
/// The next-token distribution at one temperature: the most likely tokens, the entropy (bits), the mass the shown
/// tokens hold, and how many tokens top-p and min-p sampling would keep. Temperature 0 is the argmax, probability 1.
/// </summary>
public sealed record TemperatureView(float Temperature, IReadOnlyList<TokenProbability> Top, double EntropyBits, double TopMass, int TopPKeeps, int MinPKeeps);

/// <summary>What the model predicts after a prompt, at several temperatures side by side.</summary>
public sealed record NextTokenExplanation(string Prompt, int PromptTokenCount, float TopP, float MinP, IReadOnlyList<TemperatureView> Temperatures);

/// <summary>A token of a text and how surprising the model found it: −log₂ p (the training loss, in bits) and its rank.</summary>
public sealed record TokenSurprise(int Id, string Text, double Probability, double SurpriseBits, int Rank);

/// <summary>How surprising each token of a text is to the model, and the average (bits per token).</summary>
public sealed record SurpriseExplanation(string Text, IReadOnlyList<TokenSurprise> Tokens, double MeanSurpriseBits);

/// <summary>Parameters of one kind of weight (embeddings, attention, MLP, norms, output head, other).</summary>
public sealed record ParameterGroup(string Component, long Count, int Tensors, double Share);

/// <summary>Where the model's parameters are, from its graph's initializers.</summary>
public sealed record ParameterBreakdown(long Total, IReadOnlyList<ParameterGroup> Groups)
{
    /// <summary>Bytes all initializers occupy as stored (quantized blocks with their scales and zero points included).</summary>
    public long Bytes { get; init; }

    /// <summary>Stored bytes per parameter: 4 for float32, 2 for float16, about 0.6 for 4-bit blocks of 32 with float scales.</summary>
    public double BytesPerParameter => Total == 0 ? 0 : (double)Bytes / Total;
}

/// <summary>A token and how close it is to another (cosine similarity of their embeddings).</summary>
public sealed record TokenSimilarity(int Id, string Text, double Cosine);

/// <summary>The spread of cosine similarity between random pairs of token embeddings (near 0: almost orthogonal).</summary>
public sealed record CosineSummary(int Pairs, double Mean, double StandardDeviation, double MeanAbsolute, IReadOnlyList<int> Histogram, double HistogramMin, double HistogramMax);

/// <summary>One sequence length: a decoding step with the cache, the same step recomputing the whole prefix, and a prefill of that length.</summary>
public sealed record CacheTiming(int Length, double CachedStepMs, double RecomputeStepMs, double PrefillMs);

/// <summary>What the KV cache costs and saves: bytes per token, and step times with and without it as the sequence grows.</summary>
public sealed record CacheExplanation(long BytesPerToken, long BytesAtContext, int ContextLength, IReadOnlyList<CacheTiming> Timings);
