namespace OnnxLM;

/// <summary>Which exporter's folder layout a model was loaded from.</summary>
public enum ModelFolderLayout
{
    /// <summary>ONNX Runtime GenAI: <c>genai_config.json</c> beside the graph.</summary>
    OnnxRuntimeGenAI,

    /// <summary>Hugging Face Optimum: <c>config.json</c> (+ <c>generation_config.json</c>) beside <c>model.onnx</c> or <c>decoder_model_merged.onnx</c>.</summary>
    HuggingFaceOptimum,

    /// <summary>
    /// transformers.js / onnx-community: <c>config.json</c> and the tokenizer at the root, one graph per dtype in <c>onnx/</c>
    /// (<c>model.onnx</c>, <c>model_fp16.onnx</c>, <c>model_q4.onnx</c>, …); <see cref="ModelInfo.Dtype"/> says which was loaded.
    /// </summary>
    TransformersJs,

    /// <summary>
    /// An ONNX Runtime GenAI hub repository: variant folders in subfolders (<c>cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4/</c>,
    /// <c>cuda/cuda-fp16/</c>), each with its own <c>genai_config.json</c>; <see cref="ModelInfo.Variant"/> says which was loaded.
    /// </summary>
    OnnxRuntimeGenAIVariants,
}
