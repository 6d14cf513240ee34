namespace OnnxLM.ModelBuilder;

/// <summary>Row-major float matrix helpers shared by the graph writers and weight readers.</summary>
internal static class Matrix
{
    /// <summary>[rows, columns] → [columns, rows].</summary>
    public static float[] Transpose(float[] values, int rows, int columns)
    {
        var t = new float[values.Length];
        for (var r = 0; r < rows; r++)
            for (var c = 0; c < columns; c++)
                t[c * rows + r] = values[r * columns + c];
        return t;
    }
}
