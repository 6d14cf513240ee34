namespace OnnxLM.Hosting;

/// <summary>A request arrived while <see cref="OnnxLMOptions.MaxQueueLength"/> requests were already waiting; retry later or raise the limit.</summary>
public sealed class OnnxLMQueueFullException : OnnxLMException
{
    /// <summary>Creates the exception.</summary>
    public OnnxLMQueueFullException(string message, int queueLength) : base(message) => QueueLength = queueLength;

    /// <summary>How many requests were waiting.</summary>
    public int QueueLength { get; }
}
