namespace OnnxLM.Hub;

/// <summary>A repository's files at one commit, in the local cache: hand <see cref="ModelPath"/> to <c>LanguageModel.Load</c>.</summary>
public sealed class HubSnapshot
{
    internal HubSnapshot(string repoId, string revision, string commit, string path, string modelPath, IReadOnlyList<string> files, string? dtype, string? variant, long bytesDownloaded)
    {
        (RepoId, Revision, Commit, Path, ModelPath, Files, Dtype, Variant, BytesDownloaded) = (repoId, revision, commit, path, modelPath, files, dtype, variant, bytesDownloaded);
    }

    /// <summary>The repository, <c>org/name</c>.</summary>
    public string RepoId { get; }

    /// <summary>The revision asked for (branch, tag or sha).</summary>
    public string Revision { get; }

    /// <summary>The commit sha the revision resolved to.</summary>
    public string Commit { get; }

    /// <summary>The snapshot folder, <c>models--org--name/snapshots/&lt;commit&gt;</c>.</summary>
    public string Path { get; }

    /// <summary>The folder to load: the snapshot, or the chosen GenAI variant folder inside it.</summary>
    public string ModelPath { get; }

    /// <summary>The chosen files, as paths in the repository.</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>The graph's dtype in an onnx-community repository; null otherwise.</summary>
    public string? Dtype { get; }

    /// <summary>The GenAI variant folder; null otherwise.</summary>
    public string? Variant { get; }

    /// <summary>Bytes fetched by this call (0 when everything was cached).</summary>
    public long BytesDownloaded { get; }

    /// <summary>The folder to load and the commit.</summary>
    public override string ToString() => $"{RepoId}@{Commit} → {ModelPath}";
}
