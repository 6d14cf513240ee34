namespace OnnxLM.Tests;

/// <summary>Locates the repository, its embedded models and the third-party models in ../shared/models.</summary>
public static class TestPaths
{
    private static readonly Lazy<string> RepoRootLazy = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OnnxLM.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Could not find OnnxLM.sln above " + AppContext.BaseDirectory);
    });

    /// <summary>The folder holding OnnxLM.sln.</summary>
    public static string RepoRoot => RepoRootLazy.Value;

    /// <summary>The third-party model folder beside the repository (../shared/models).</summary>
    public static string SharedModelsRoot => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "models"));

    /// <summary>Full path of a model in ../shared/models.</summary>
    public static string SharedModel(string name) => Path.Combine(SharedModelsRoot, name);

    /// <summary>Full path of a model embedded in the repository's models/ folder.</summary>
    public static string RepoModel(string name) => Path.Combine(RepoRoot, "models", name);

    /// <summary>Full path of a test data file under tests/data.</summary>
    public static string TestData(string relative) => Path.Combine(RepoRoot, "tests", "data", relative);

    /// <summary>Whether a third-party model folder is present.</summary>
    public static bool HasSharedModel(string name) => Directory.Exists(SharedModel(name));
}
