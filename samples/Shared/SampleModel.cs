/// <summary>
/// The model folder a sample runs on: its first argument, else models/kjv-tiny found above the current folder or
/// above the sample's own folder (so a sample runs from its folder, the repository root or anywhere inside it).
/// </summary>
internal static class SampleModel
{
    public static string Find(string[] args)
    {
        if (args.Length > 0) return args[0];
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "models", "kjv-tiny");
                if (Directory.Exists(candidate)) return candidate;
            }
        }

        throw new DirectoryNotFoundException("models/kjv-tiny was not found above this folder; give a model folder as the first argument.");
    }
}
