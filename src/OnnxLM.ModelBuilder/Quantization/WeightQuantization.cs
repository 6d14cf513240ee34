using System.Globalization;

namespace OnnxLM.ModelBuilder;

/// <summary>
/// Weight-only block quantization of a decoder's projection and MLP matrices (and optionally its output projection),
/// written as ONNX Runtime's <c>com.microsoft.MatMulNBits</c> operator: each row of a weight matrix (one output
/// feature) is cut into blocks of <see cref="BlockSize"/> input features, and each block stores
/// <see cref="Bits"/>-bit integers with one float scale (and, unless <see cref="Symmetric"/>, one zero point).
/// Activations, norms, the token embedding lookup and the key/value cache stay floating point.
/// </summary>
public sealed class WeightQuantization
{
    private int _bits = 4;
    private int _blockSize = 32;
    private int _accuracyLevel = 4;

    /// <summary>Bits per weight: 4 or 8. Default 4.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not 4 or 8.</exception>
    public int Bits
    {
        get => _bits;
        set => _bits = value is 4 or 8
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Bits), value, $"Bits must be 4 or 8 (found {value}).");
    }

    /// <summary>Weights per block along the input dimension: 16, 32, 64, 128 or 256. Default 32.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not one of the allowed sizes.</exception>
    public int BlockSize
    {
        get => _blockSize;
        set => _blockSize = value is 16 or 32 or 64 or 128 or 256
            ? value
            : throw new ArgumentOutOfRangeException(nameof(BlockSize), value, $"BlockSize must be 16, 32, 64, 128 or 256 (found {value}).");
    }

    /// <summary>
    /// True (default): blocks are centred on zero and store no zero point (ONNX Runtime's default zero point
    /// 2^(bits−1) applies). False: each block also stores a zero point, so a block whose weights are not centred on
    /// zero uses the whole integer range.
    /// </summary>
    public bool Symmetric { get; set; } = true;

    /// <summary>How block scales are chosen. Default <see cref="QuantizationMethod.RoundToNearest"/>.</summary>
    public QuantizationMethod Method { get; set; } = QuantizationMethod.RoundToNearest;

    /// <summary>
    /// Whether the output projection (lm_head, or the tied embedding used as one) is quantized too. Default true. False
    /// keeps it in the float precision of the rest of the file (<see cref="ModelBuilderOptions.Float16Weights"/>).
    /// The token embedding lookup is always kept in float precision: it reads one row per token, so quantizing it
    /// shrinks the file but not the bytes read per token.
    /// </summary>
    public bool QuantizeOutputProjection { get; set; } = true;

    /// <summary>
    /// MatMulNBits' <c>accuracy_level</c>: the least precise type ONNX Runtime may convert the activations to inside the
    /// product. 0 leaves the choice to ONNX Runtime, 1 float32, 2 float16, 3 bfloat16, 4 (default) int8: activations
    /// quantized per block on the fly, the fastest CPU path and the only fast one for 8-bit weights in ONNX Runtime
    /// 1.31 (at 0 or 1, 8-bit kjv-tiny decoded 4–8× slower than float32). Use 1 when the product must match float32
    /// arithmetic on the dequantized weights.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside 0 to 4.</exception>
    public int AccuracyLevel
    {
        get => _accuracyLevel;
        set => _accuracyLevel = value is >= 0 and <= 4
            ? value
            : throw new ArgumentOutOfRangeException(nameof(AccuracyLevel), value, $"AccuracyLevel must be between 0 and 4 (found {value}).");
    }

    /// <summary>
    /// Reads a command-line style name: <c>int4</c> or <c>int8</c> (case-insensitive), with the other settings left at
    /// their defaults.
    /// </summary>
    /// <exception cref="ArgumentException">Any other name; the message lists the accepted ones.</exception>
    public static WeightQuantization Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "int4" => new WeightQuantization { Bits = 4 },
            "int8" => new WeightQuantization { Bits = 8 },
            _ => throw new ArgumentException($"Unknown quantization '{name}'; expected int4 or int8.", nameof(name)),
        };
    }

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"int{Bits}, block {BlockSize}, {(Symmetric ? "symmetric" : "zero points")}, {Method}{(QuantizeOutputProjection ? "" : ", float output projection")}");
}
