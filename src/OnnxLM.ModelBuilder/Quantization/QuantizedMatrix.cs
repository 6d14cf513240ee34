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
}
