namespace OnnxLM.Models;

/// <summary>
/// The kjv-tiny model this package copies beside the application (<c>models/kjv-tiny</c> in the output folder): a
/// 9.9M-parameter Llama trained on the King James Bible, small enough to try every OnnxLM API in a fresh app.
/// </summary>
/// <example><code>using var model = LanguageModel.Load(KjvTiny.FolderPath);</code></example>
public static class KjvTiny
{
    /// <summary>The model folder beside the application, to hand to <c>LanguageModel.Load</c>.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder was not copied to the output (the package's content files were excluded).</exception>
    public static string FolderPath
    {
        get
        {
            var folder = Path.Combine(AppContext.BaseDirectory, "models", "kjv-tiny");
            return File.Exists(Path.Combine(folder, "model.onnx"))
                ? folder
                : throw new DirectoryNotFoundException(
                    $"kjv-tiny's files are not at {folder}; the OnnxLM.Models.KjvTiny package copies them there unless its content files are excluded (PackageReference ExcludeAssets=\"contentFiles\").");
        }
    }
}
