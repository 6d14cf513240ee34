namespace OnnxLM.Explain;

/// <summary>What the model predicts after a prompt, at several temperatures side by side.</summary>
public sealed record NextTokenExplanation(string Prompt, int PromptTokenCount, float TopP, float MinP, IReadOnlyList<TemperatureView> Temperatures);
