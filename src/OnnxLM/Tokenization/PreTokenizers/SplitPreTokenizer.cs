namespace OnnxLM.Tokenization;

/// <summary>
/// Splits at the matches of a pattern, or at characters of a kind, with a delimiter behaviour: tokenizer.json's
/// Split, Punctuation, Digits, WhitespaceSplit, Whitespace and CharDelimiterSplit.
/// </summary>
internal sealed class SplitPreTokenizer(Func<string, List<(int Start, int End)>> find, SplitBehavior behavior, bool invert = false) : IPreTokenizer
{
    public void PreTokenize(List<NormalizedText> pieces) => Splitter.SplitAll(pieces, find, behavior, invert);

    public static SplitPreTokenizer Pattern(PatternMatcher pattern, SplitBehavior behavior, bool invert) => new(pattern.Matches, behavior, invert);

    /// <summary>Rust's char::is_whitespace is the Unicode White_Space property, as .NET's Rune.IsWhiteSpace.</summary>
    public static SplitPreTokenizer WhitespaceSplit() => new(Splitter.Chars(System.Text.Rune.IsWhiteSpace), SplitBehavior.Removed);

    /// <summary>ASCII punctuation and every Unicode punctuation category, each character a delimiter.</summary>
    public static SplitPreTokenizer Punctuation(SplitBehavior behavior) => new(Splitter.Chars(IsPunctuation), behavior);

    /// <summary>Numeric characters, one by one or in runs.</summary>
    public static SplitPreTokenizer Digits(bool individual) =>
        new(Splitter.Chars(IsNumeric), individual ? SplitBehavior.Isolated : SplitBehavior.Contiguous);

    public static SplitPreTokenizer CharDelimiter(char delimiter) => new(Splitter.Chars(r => r.Value == delimiter), SplitBehavior.Removed);

    /// <summary>Runs of word characters and runs of other non-space characters (\w+|[^\w\s]+), everything else dropped.</summary>
    public static SplitPreTokenizer Whitespace() =>
        new(PatternMatcher.FromRegex(@"[\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}]+|[^\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}\s]+", "The Whitespace pre-tokenizer").Matches, SplitBehavior.Removed, invert: true);

    /// <summary>BERT: whitespace removed, then every punctuation character isolated.</summary>
    public static IPreTokenizer Bert() => new SequencePreTokenizer([WhitespaceSplit(), Punctuation(SplitBehavior.Isolated)]);

    internal static bool IsPunctuation(System.Text.Rune r) =>
        r.IsAscii && char.IsAsciiLetterOrDigit((char)r.Value) is false && r.Value is > 32 and < 127 || System.Text.Rune.IsPunctuation(r);

    internal static bool IsNumeric(System.Text.Rune r) => System.Text.Rune.IsNumber(r);
}
