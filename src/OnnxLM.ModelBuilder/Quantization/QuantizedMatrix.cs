namespace OnnxLM.ModelBuilder;

/// <summary>
/// A weight matrix [rows = N output features, columns = K input features] in MatMulNBits' layout: for every row,
/// ceil(K / block) blocks of <see cref="BlobSize"/> bytes with the integers packed along K (for 4 bits the first of two
/// in the low nibble), one float scale per block, and optionally one zero point per block packed the same way per row.
/// A weight dequantizes to (q − zero point) × scale; without stored zero points the zero point is 2^(bits−1).
/// </summary>
internal sealed record QuantizedMatrix(int Rows, int Columns, int Bits, int BlockSize, byte[] Packed, float[] Scales, byte[]? ZeroPoints)
{
    public int BlocksPerRow => (Columns + BlockSize - 1) / BlockSize;

    public int BlobSize => BlockSize * Bits / 8;

    public int ZeroPointBytesPerRow => ((BlocksPerRow * Bits) + 7) / 8;

    /// <summary>Bytes the quantized matrix occupies: packed integers, float32 scales, zero points.</summary>
    public long ByteCount => Packed.Length + (4L * Scales.Length) + (ZeroPoints?.Length ?? 0);

    /// <summary>The integer stored for row <paramref name="row"/>, column <paramref name="column"/>.</summary>
    public int Stored(int row, int column)
    {
        var (block, within) = Math.DivRem(column, BlockSize);
        var blob = ((long)row * BlocksPerRow + block) * BlobSize;
        return Bits == 8 ? Packed[blob + within] : (Packed[blob + within / 2] >> (within % 2 * 4)) & 0xF;
    }

    /// <summary>The zero point of one block.</summary>
    public int ZeroPoint(int row, int block) => ZeroPoints is null
        ? 1 << (Bits - 1)
        : Bits == 8 ? ZeroPoints[row * ZeroPointBytesPerRow + block] : (ZeroPoints[row * ZeroPointBytesPerRow + block / 2] >> (block % 2 * 4)) & 0xF;

    /// <summary>The weights the runtime computes with, [rows, columns] row-major.</summary>
    public float[] Dequantize()
    {
        var values = new float[(long)Rows * Columns];
        for (var r = 0; r < Rows; r++)
        {
            for (var c = 0; c < Columns; c++)
            {
                var block = c / BlockSize;
                values[(long)r * Columns + c] = (Stored(r, c) - ZeroPoint(r, block)) * Scales[r * BlocksPerRow + block];
            }
        }

        return values;
    }
}
