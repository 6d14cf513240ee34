namespace OnnxLM.Sampling;

/// <summary>Divides logits by a temperature: below 1 sharpens the distribution, above 1 flattens it.</summary>
internal sealed class TemperatureProcessor : ILogitProcessor
{
    /// <summary>Creates the processor.</summary>
    /// <param name="temperature">A finite value greater than 0.</param>
    public TemperatureProcessor(float temperature)
    {
        if (!(temperature > 0) || !float.IsFinite(temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "Temperature must be a finite number greater than 0.");
        }

        Temperature = temperature;
    }

    /// <summary>The temperature.</summary>
    public float Temperature { get; }

    /// <inheritdoc />
    public void Process(Span<float> logits, SamplingContext context) =>
        System.Numerics.Tensors.TensorPrimitives.Divide(logits, Temperature, logits);
}
