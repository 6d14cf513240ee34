namespace OnnxLM.Hub;

/// <summary>What went wrong in a <see cref="HubException"/>.</summary>
public enum HubErrorKind
{
    /// <summary>The repository, revision or file does not exist (the Hub answered 404).</summary>
    NotFound,

    /// <summary>The Hub refused without a token (401): the repository is missing, private or gated; set HF_TOKEN.</summary>
    Unauthorized,

    /// <summary>The repository is gated and the token (or its absence) does not grant access (401/403).</summary>
    Gated,

    /// <summary>Offline (HF_HUB_OFFLINE) and the repository or revision is not in the cache.</summary>
    Offline,

    /// <summary>A downloaded file's size or hash differs from the Hub's; the partial file was deleted.</summary>
    Integrity,

    /// <summary>The disk holding the cache has no room for the files.</summary>
    DiskFull,

    /// <summary>The repository holds no graph OnnxLM can load, or not the requested dtype or variant.</summary>
    NoMatchingFiles,

    /// <summary>The Hub kept failing (5xx, 429, dropped connections) after the retries.</summary>
    Network,
}
