namespace OnnxLM;

/// <summary>Which exporter's folder layout a model was loaded from.</summary>
public enum ModelFolderLayout
{
    /// <summary>ONNX Runtime GenAI: <c>genai_config.json</c> beside the graph.</summary>
    OnnxRuntimeGenAI,

    /// <summary>Hugging Face Optimum: <c>config.json</c> (+ <c>generation_config.json</c>) beside <c>model.onnx</c> or <c>decoder_model_merged.onnx</c>.</summary>
    HuggingFaceOptimum,
}
