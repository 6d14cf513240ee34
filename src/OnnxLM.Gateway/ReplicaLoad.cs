namespace OnnxLM.Gateway;

/// <summary>One replica's reported load: requests waiting in its queue, running as batch rows, and in flight in all.</summary>
internal readonly record struct ReplicaLoad(int Waiting, int Running, int InFlight);
