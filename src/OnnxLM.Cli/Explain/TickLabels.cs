using ScottPlot;

namespace OnnxLM.Cli.Explain;

/// <summary>
/// Token labels under a plot, slanted 45° and ending at their tick (matplotlib's <c>rotation=45, ha="right"</c>), and the
/// room they take: ScottPlot sizes an axis by its labels' unrotated height, which clips slanted labels and lets them run
/// into the axis title, so the figure measures the boxes here and reserves the room itself.
/// </summary>
internal static class TickLabels
{
    /// <summary>The slant, in degrees counter-clockwise from the axis.</summary>
    public const float Angle = 45;

    /// <summary>Token labels are large and bold in a monospace font, so that a lone "," or "." is still seen.</summary>
    public const float FontSize = 16;

    /// <summary>Pixels kept free between a label and the figure's edge or the axis title.</summary>
    public const float Margin = 6;

    /// <summary>Labels as they are drawn: a token's whitespace made visible (<c>·</c>, <c>⏎</c>, <c>→</c>), as in the terminal views.</summary>
    public static string Text(string label, bool tokens) => tokens ? CliContext.Visible(label) : label;

    /// <summary>
    /// Sets the axis's ticks at the given positions with these labels (slanted on the bottom axis); <paramref name="tokens"/>
    /// draws them as tokens, each in a box with its whitespace shown.
    /// </summary>
    public static void Apply(IAxis axis, IReadOnlyList<string> labels, Func<int, double> at, bool tokens)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (var i = 0; i < labels.Count; i++) ticks.AddMajor(at(i), Text(labels[i], tokens));
        axis.TickGenerator = ticks;
        Style(axis.TickLabelStyle, tokens);
        if (axis.Edge == Edge.Bottom)
        {
            axis.TickLabelStyle.Rotation = -Angle;
            axis.TickLabelStyle.Alignment = Alignment.MiddleRight;
            axis.TickLabelStyle.OffsetY = Drop;
        }
    }

    /// <summary>Width and height in pixels of a label's text, measured with the font it is drawn in.</summary>
    public static PixelSize Measure(string label, bool tokens)
    {
        var style = new LabelStyle { Text = Text(label, tokens) };
        Style(style, tokens);
        using var paint = Paint.NewDisposablePaint();
        var measured = style.Measure(paint);
        return new PixelSize(measured.Width, measured.Height);
    }

    /// <summary>
    /// The box a slanted label takes when its text's right end (mid-height) is at <paramref name="anchor"/>: the text runs up
    /// and to the right, so the box hangs below the anchor and to its left. <paramref name="size"/> is the text's size
    /// without the label's padding.
    /// </summary>
    public static PixelRect Box(Pixel anchor, PixelSize size)
    {
        // Corners of the padded text box in its own frame (u along the text, v across it, downwards), turned by the slant.
        var c = MathF.Cos(Angle * MathF.PI / 180);
        var s = MathF.Sin(Angle * MathF.PI / 180);
        var (before, after, across) = (size.Width + Pad, Pad, (size.Height / 2) + Pad);
        return new PixelRect(
            left: anchor.X - (before * c) - (across * s),
            right: anchor.X + (after * c) + (across * s),
            bottom: anchor.Y + (before * s) + (across * c),
            top: anchor.Y - (after * s) - (across * c));
    }

    /// <summary>The boxes of the bottom axis's labels in a figure whose data area is <paramref name="data"/>.</summary>
    public static IReadOnlyList<PixelRect> Boxes(IAxis bottom, IReadOnlyList<string> labels, Func<int, double> at, bool tokens, PixelRect data)
    {
        // ScottPlot anchors a bottom tick label just under the tick mark.
        var y = data.Bottom + bottom.MajorTickStyle.Length + bottom.TickLabelStyle.OffsetY;
        var boxes = new PixelRect[labels.Count];
        for (var i = 0; i < labels.Count; i++) boxes[i] = Box(new Pixel(bottom.GetPixel(at(i), data), y), Measure(labels[i], tokens));
        return boxes;
    }

    private static void Style(LabelStyle style, bool tokens)
    {
        style.FontName = Fonts.Monospace;
        style.FontSize = FontSize;
        style.Bold = tokens;
        style.PixelPadding = new PixelPadding(Pad);
        if (!tokens) return;
        // Each token in its own light box, as the playground draws them: a box shows a token even when its text is one small mark.
        style.BackgroundColor = Color.FromHex("#F3F4F6");
        style.BorderColor = Color.FromHex("#9CA3AF");
        style.BorderWidth = 1;
    }

    /// <summary>Pixels a slanted label is moved down, so that its box clears the axis line.</summary>
    private const float Drop = 8;

    /// <summary>Pixels between a label's text and its box.</summary>
    private const float Pad = 3;
}
