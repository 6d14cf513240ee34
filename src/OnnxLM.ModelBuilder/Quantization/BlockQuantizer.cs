namespace OnnxLM.ModelBuilder;

/// <summary>Quantizes weight matrices block by block into <see cref="QuantizedMatrix"/> (MatMulNBits' layout).</summary>
internal static class BlockQuantizer
{
    // Scale search: multiples of the round-to-nearest scale, 0.70 to 1.10. Values below 1 clip the block's largest
    // weights to give the rest a finer grid; 1 itself is included, so the search is never worse than round-to-nearest.
    private const int SearchSteps = 41;
    private const float SearchLow = 0.70f;
    private const float SearchStep = 0.01f;

    /// <summary>Quantizes <paramref name="weights"/> [rows, columns] (row-major, rows = output features) along the columns.</summary>
    public static QuantizedMatrix Quantize(ReadOnlySpan<float> weights, int rows, int columns, WeightQuantization options) =>
        Quantize(weights.ToArray(), rows, columns, options);

    /// <summary>Quantizes <paramref name="weights"/> [rows, columns] without copying them first (a 1B model's embedding is 1 GB).</summary>
    public static QuantizedMatrix Quantize(float[] weights, int rows, int columns, WeightQuantization options)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(options);
        if (weights.Length != (long)rows * columns)
        {
            throw new ArgumentException($"{weights.Length} weights do not form a [{rows}, {columns}] matrix.", nameof(weights));
        }

        var (bits, block) = (options.Bits, options.BlockSize);
        var blocks = (columns + block - 1) / block;
        var blob = block * bits / 8;
        var zeroPointBytes = ((blocks * bits) + 7) / 8;
        var packed = new byte[(long)rows * blocks * blob];
        var scales = new float[rows * blocks];
        var zeroPoints = options.Symmetric ? null : new byte[rows * zeroPointBytes];
        var source = weights;
        Parallel.For(0, rows, () => new int[block], (r, _, q) =>
        {
            for (var b = 0; b < blocks; b++)
            {
                var start = (long)r * columns + b * block;
                var length = Math.Min(block, columns - b * block);
                var (scale, zeroPoint) = QuantizeBlock(source.AsSpan((int)start, length), bits, options.Symmetric, options.Method, q);
                scales[r * blocks + b] = scale;
                // Columns past K (the last block of a row whose K is not a multiple of the block) store the zero point: they dequantize to 0.
                q.AsSpan(length).Fill(zeroPoint);
                var at = ((long)r * blocks + b) * blob;
                if (bits == 8)
                {
                    for (var j = 0; j < block; j++) packed[at + j] = (byte)q[j];
                }
                else
                {
                    for (var j = 0; j < block; j += 2) packed[at + j / 2] = (byte)(q[j] | (q[j + 1] << 4));
                }

                if (zeroPoints is not null)
                {
                    var z = r * zeroPointBytes;
                    if (bits == 8) zeroPoints[z + b] = (byte)zeroPoint;
                    else zeroPoints[z + b / 2] |= (byte)(zeroPoint << (b % 2 * 4));
                }
            }

            return q;
        }, _ => { });
        return new QuantizedMatrix(rows, columns, bits, block, packed, scales, zeroPoints);
    }

    /// <summary>Quantizes one block into <paramref name="q"/>; returns its scale and zero point.</summary>
    internal static (float Scale, int ZeroPoint) QuantizeBlock(ReadOnlySpan<float> x, int bits, bool symmetric, QuantizationMethod method, Span<int> q)
    {
        var levels = (1 << bits) - 1;
        float lo = 0, hi = 0, extreme = 0;
        foreach (var v in x)
        {
            lo = Math.Min(lo, v);
            hi = Math.Max(hi, v);
            if (Math.Abs(v) > Math.Abs(extreme)) extreme = v;
        }

        if (symmetric)
        {
            // The weight of largest magnitude lands on the grid's far end, −2^(bits−1), whatever its sign: the negative
            // end has one more step than the positive one, so this uses the whole range (a negative scale is allowed).
            var half = 1 << (bits - 1);
            var rounded = extreme / -half;
            var scale = method == QuantizationMethod.ScaleSearch && rounded != 0 ? rounded * BestFactor(x, f => (rounded * f, half), levels) : rounded;

            Round(x, scale, half, levels, q);
            return (scale, half);
        }

        var rangeScale = (hi - lo) / levels;
        if (rangeScale == 0)
        {
            q[..x.Length].Clear();
            return (0, 0);
        }

        (float, int) Asymmetric(float f)
        {
            var s = rangeScale * f;
            return (s, Math.Clamp((int)MathF.Round(-lo * f / s), 0, levels));
        }

        var (best, zero) = Asymmetric(method == QuantizationMethod.ScaleSearch ? BestFactor(x, Asymmetric, levels) : 1);

        Round(x, best, zero, levels, q);
        return (best, zero);
    }

    private static float BestFactor(ReadOnlySpan<float> x, Func<float, (float Scale, int Zero)> candidate, int levels)
    {
        var bestFactor = 1f;
        var bestError = Error(x, candidate(1), levels);
        for (var i = 0; i < SearchSteps; i++)
        {
            var f = SearchLow + i * SearchStep;
            var error = Error(x, candidate(f), levels);
            if (error < bestError) (bestFactor, bestError) = (f, error);
        }

        return bestFactor;
    }

    private static double Error(ReadOnlySpan<float> x, (float Scale, int Zero) c, int levels)
    {
        double sum = 0;
        foreach (var v in x)
        {
            var q = Math.Clamp((int)MathF.Round(v / c.Scale) + c.Zero, 0, levels);
            var d = v - (q - c.Zero) * c.Scale;
            sum += d * d;
        }

        return sum;
    }

    private static void Round(ReadOnlySpan<float> x, float scale, int zero, int levels, Span<int> q)
    {
        if (scale == 0)
        {
            q[..x.Length].Fill(zero);
            return;
        }

        for (var i = 0; i < x.Length; i++)
        {
            q[i] = Math.Clamp((int)MathF.Round(x[i] / scale) + zero, 0, levels);
        }
    }
}
