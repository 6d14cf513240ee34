namespace OnnxLM.Hub;

/// <summary>What to download from one repository: the revision and the precision (dtype) or GenAI variant.</summary>
public sealed class HubDownloadOptions
{
    private string _revision = "main";

    /// <summary>Branch, tag or commit sha (default <c>main</c>).</summary>
    public string Revision
    {
        get => _revision;
        set
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(value, nameof(Revision));
            _revision = value;
        }
    }

    /// <summary>
    /// The graph's precision in an onnx-community repository, named as transformers.js names it
    /// (fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4); null picks the first the repository has in
    /// <see cref="ModelHub.DefaultDtypeOrder"/>.
    /// </summary>
    public string? Dtype { get; set; }

    /// <summary>
    /// The variant folder of an ONNX Runtime GenAI repository (e.g. <c>cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4</c>,
    /// or its last segment); null picks the only one, else the first whose path names the CPU.
    /// </summary>
    public string? Variant { get; set; }
}
