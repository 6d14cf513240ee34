using System.Text;

namespace OnnxLM.Tokenization;

/// <summary>
/// A piece of text on its way through the tokenizer stages, with (optionally) the span of the original text that
/// produced each UTF-16 unit, as Hugging Face's NormalizedString keeps it: what lets token offsets point into the
/// user's text after normalizers and pre-tokenizers have rewritten it. Without tracking only the text is kept.
/// </summary>
internal sealed class NormalizedText
{
    public NormalizedText(string text, int[]? starts, int[]? ends, int offset = 0, TextBudget? budget = null)
    {
        Text = text;
        Starts = starts;
        Ends = ends;
        Offset = starts is { Length: > 0 } ? starts[0] : offset;
        Budget = budget;
    }

    /// <summary>The encode call's growth allowance and cancellation, shared by every piece of its text; null outside an encode.</summary>
    public TextBudget? Budget { get; }

    /// <summary>Where in the original text this piece starts (kept even when offsets are not tracked).</summary>
    public int Offset { get; }

    /// <summary>Whether the piece starts the original text (Metaspace's "first" scheme).</summary>
    public bool IsAtTextStart => Offset == 0;

    public string Text { get; }

    /// <summary>Original start offset of each unit of <see cref="Text"/>; null when offsets are not tracked.</summary>
    public int[]? Starts { get; }

    /// <summary>Original end offset of each unit of <see cref="Text"/>; null when offsets are not tracked.</summary>
    public int[]? Ends { get; }

    public bool Tracked => Starts is not null;

    public int Length => Text.Length;

    /// <summary>A text whose units map to <paramref name="offset"/> + their index in the original.</summary>
    public static NormalizedText FromOriginal(string text, int offset, bool track, TextBudget? budget = null)
    {
        if (!track)
        {
            return new NormalizedText(text, null, null, offset, budget);
        }

        var starts = new int[text.Length];
        var ends = new int[text.Length];
        for (var i = 0; i < text.Length; i++)
        {
            starts[i] = offset + i;
            ends[i] = offset + i + 1;
        }

        return new NormalizedText(text, starts, ends, 0, budget);
    }

    public NormalizedText Slice(int start, int length)
    {
        if (start == 0 && length == Text.Length)
        {
            return this;
        }

        var text = Text.Substring(start, length);
        return Tracked
            ? new NormalizedText(text, Starts.AsSpan(start, length).ToArray(), Ends.AsSpan(start, length).ToArray(), 0, Budget)
            : new NormalizedText(text, null, null, Offset + start, Budget);
    }

    /// <summary>The original span covered by units [start, end) of the text; an empty range maps to a point.</summary>
    public (int Start, int End) OriginalRange(int start, int end)
    {
        if (!Tracked || Text.Length == 0)
        {
            return (0, 0);
        }

        if (end <= start)
        {
            var at = start < Text.Length ? Starts![start] : Ends![Text.Length - 1];
            return (at, at);
        }

        var s = int.MaxValue;
        var e = int.MinValue;
        for (var i = start; i < end; i++)
        {
            s = Math.Min(s, Starts![i]);
            e = Math.Max(e, Ends![i]);
        }

        return (s, e);
    }

    /// <summary>Starts a rewrite of this text: stages append output and say which input units it came from.</summary>
    public Rewriter Rewrite(int capacity = 0) => new(this, capacity == 0 ? Text.Length : capacity);

    /// <summary>Builds a new text from pieces of an old one, keeping the alignment when it is tracked.</summary>
    internal sealed class Rewriter
    {
        private readonly NormalizedText _source;
        private readonly StringBuilder _text;
        private readonly List<int>? _starts;
        private readonly List<int>? _ends;
        private readonly TextBudget _budget;
        private long _charged;

        public Rewriter(NormalizedText source, int capacity)
        {
            _source = source;
            // Outside an encode (an added token's normalized form at load, a decoder step) the text's own length sets the allowance.
            _budget = source.Budget ?? new TextBudget(source.Length, "the tokenizer");
            _text = new StringBuilder(Math.Min(capacity, source.Length + TextTokenizer.MaxGrowthSlack));
            if (source.Tracked)
            {
                _starts = new List<int>(capacity);
                _ends = new List<int>(capacity);
            }
        }

        public int Length => _text.Length;

        /// <summary>Copies input units [from, to) unchanged.</summary>
        public void Copy(int from, int to)
        {
            _text.Append(_source.Text, from, to - from);
            if (_starts is not null)
            {
                for (var i = from; i < to; i++)
                {
                    _starts.Add(_source.Starts![i]);
                    _ends!.Add(_source.Ends![i]);
                }
            }

            Charge();
        }

        /// <summary>Appends text produced from input units [from, to); an empty range inserts at <paramref name="from"/>.</summary>
        public void Emit(ReadOnlySpan<char> output, int from, int to)
        {
            _text.Append(output);
            if (_starts is not null)
            {
                var (s, e) = _source.OriginalRange(from, to);
                for (var i = 0; i < output.Length; i++)
                {
                    _starts.Add(s);
                    _ends!.Add(e);
                }
            }

            Charge();
        }

        /// <summary>Charges what the output has grown beyond the input since the last charge, so a runaway stage stops early.</summary>
        private void Charge()
        {
            var over = _text.Length - _source.Length;
            if (over > _charged)
            {
                _budget.Grow(over - _charged);
                _charged = over;
            }
        }

        public void Emit(char output, int from, int to) => Emit([output], from, to);

        public NormalizedText ToText() =>
            new(_text.ToString(), _starts?.ToArray(), _ends?.ToArray(), _source.Offset, _source.Budget);
    }
}
