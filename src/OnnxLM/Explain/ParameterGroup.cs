namespace OnnxLM.Explain;

/// <summary>Parameters of one kind of weight (embeddings, attention, MLP, norms, output head, other).</summary>
public sealed record ParameterGroup(string Component, long Count, int Tensors, double Share);
