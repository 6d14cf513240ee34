namespace OnnxLM.Tests;

/// <summary>A fact that needs third-party models from ../shared/models; skipped with the reason when they are absent.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class SharedModelFactAttribute : FactAttribute
{
    /// <summary>Creates the attribute for the named model folders.</summary>
    public SharedModelFactAttribute(params string[] models)
    {
        var missing = models.Where(m => !TestPaths.HasSharedModel(m)).ToArray();
        if (missing.Length > 0)
        {
            Skip = $"third-party model(s) {string.Join(", ", missing)} not found under {TestPaths.SharedModelsRoot} (the ../shared/models folder beside the repository)";
        }
    }
}

/// <summary>A theory that needs third-party models from ../shared/models; skipped with the reason when they are absent.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class SharedModelTheoryAttribute : TheoryAttribute
{
    /// <summary>Creates the attribute; with no names it only needs the ../shared/models folder itself.</summary>
    public SharedModelTheoryAttribute(params string[] models)
    {
        if (!Directory.Exists(TestPaths.SharedModelsRoot))
        {
            Skip = $"third-party models folder {TestPaths.SharedModelsRoot} (../shared/models) is absent";
            return;
        }

        var missing = models.Where(m => !TestPaths.HasSharedModel(m)).ToArray();
        if (missing.Length > 0)
        {
            Skip = $"third-party model(s) {string.Join(", ", missing)} not found under {TestPaths.SharedModelsRoot}";
        }
    }
}
