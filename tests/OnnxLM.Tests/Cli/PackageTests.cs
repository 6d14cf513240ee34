using System.IO.Compression;
using System.Xml.Linq;

namespace OnnxLM.Tests;

/// <summary>
/// The packages build/pack.sh writes (CI packs before testing; without a feed these skip): every one with its readme,
/// licence, repository and symbols, the library on ONNX Runtime's managed API only, the linux-x64 tool within its
/// size budget and carrying the default model.
/// </summary>
public sealed class PackageTests
{
    private static readonly string Feed = Path.Combine(TestPaths.RepoRoot, "build", "feed");
    private const long ToolBudget = 80L * 1024 * 1024;

    public static TheoryData<string> Packages() =>
        [.. new[] { "OnnxLM", "OnnxLM.Hosting", "OnnxLM.Hub", "OnnxLM.Models.KjvTiny", "OnnxLM.ModelBuilder", "OnnxLM.Server", "OnnxLM.Cli", "OnnxLM.Cli.linux-x64", "OnnxLM.Cli.win-x64", "OnnxLM.Cli.osx-arm64", "OnnxLM.Cli.linux-arm64" }];

    private static string? Find(string id) =>
        Directory.Exists(Feed) ? Directory.GetFiles(Feed, $"{id}.*.nupkg").FirstOrDefault(f => System.Text.RegularExpressions.Regex.IsMatch(Path.GetFileName(f), $@"^{System.Text.RegularExpressions.Regex.Escape(id)}\.\d+\.\d+\.\d+.*\.nupkg$")) : null;

    private static XElement Metadata(ZipArchive zip)
    {
        var nuspec = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
        using var stream = nuspec.Open();
        var doc = XDocument.Load(stream);
        return doc.Root!.Elements().Single(e => e.Name.LocalName == "metadata");
    }

    private static string? Value(XElement metadata, string name) => metadata.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;

    [SkippableTheory]
    [MemberData(nameof(Packages))]
    public void EveryPackageHasItsReadmeLicenceRepositoryAndSymbols(string id)
    {
        var path = Find(id);
        Skip.If(path is null, $"no {id} package in {Feed} (run bash build/pack.sh)");
        using var zip = ZipFile.OpenRead(path!);
        var metadata = Metadata(zip);
        Assert.Equal("README.md", Value(metadata, "readme"));
        Assert.NotNull(zip.GetEntry("README.md"));
        Assert.Equal("MIT", Value(metadata, "license"));
        var repository = metadata.Elements().Single(e => e.Name.LocalName == "repository");
        Assert.StartsWith("https://", repository.Attribute("url")?.Value);
        Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? "");
        if (id != "OnnxLM.Cli")
        {
            // The pointer package of the RID-specific tool has no code of its own, so no symbols.
            Assert.True(File.Exists(Path.ChangeExtension(path, ".snupkg")), $"{id} has no symbol package");
            Assert.Contains(zip.Entries, e => e.FullName.EndsWith(".xml", StringComparison.Ordinal) || id.StartsWith("OnnxLM.Cli", StringComparison.Ordinal));
        }
    }

    [SkippableFact]
    public void TheLibraryBindsToTheManagedOnnxRuntimeOnly()
    {
        var path = Find("OnnxLM");
        Skip.If(path is null, $"no OnnxLM package in {Feed} (run bash build/pack.sh)");
        using var zip = ZipFile.OpenRead(path!);
        var dependencies = Metadata(zip).Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => e.Attribute("id")!.Value).ToList();
        Assert.Contains("Microsoft.ML.OnnxRuntime.Managed", dependencies);
        Assert.DoesNotContain(dependencies, d => d is "Microsoft.ML.OnnxRuntime" or "Microsoft.ML.OnnxRuntime.Gpu");
        Assert.Contains(zip.Entries, e => e.FullName == "lib/net10.0/OnnxLM.xml");
    }

    [SkippableFact]
    public void TheLinuxToolIsSmallAndCarriesTheDefaultModel()
    {
        var path = Find("OnnxLM.Cli.linux-x64");
        Skip.If(path is null, $"no OnnxLM.Cli.linux-x64 package in {Feed} (run bash build/pack.sh)");
        Assert.True(new FileInfo(path!).Length <= ToolBudget, $"{Path.GetFileName(path)} is {new FileInfo(path!).Length / 1048576.0:F1} MB, over {ToolBudget / 1048576} MB");
        using var zip = ZipFile.OpenRead(path!);
        Assert.Contains(zip.Entries, e => e.FullName.EndsWith("models/kjv-tiny/model.onnx", StringComparison.Ordinal));
        Assert.Contains(zip.Entries, e => e.FullName.EndsWith("models/kjv-tiny/tokenizer.json", StringComparison.Ordinal));
        Assert.Contains(zip.Entries, e => e.FullName.EndsWith("libonnxruntime.so", StringComparison.Ordinal));
        Assert.DoesNotContain(zip.Entries, e => e.FullName.Contains("cuda", StringComparison.OrdinalIgnoreCase) || e.FullName.EndsWith(".dll", StringComparison.Ordinal) && e.FullName.Contains("onnxruntime.dll", StringComparison.Ordinal));
    }

    [SkippableFact]
    public void TheModelPackageCopiesKjvTinyBesideTheApp()
    {
        var path = Find("OnnxLM.Models.KjvTiny");
        Skip.If(path is null, $"no OnnxLM.Models.KjvTiny package in {Feed} (run bash build/pack.sh)");
        using var zip = ZipFile.OpenRead(path!);
        var copied = Metadata(zip).Descendants().Where(e => e.Name.LocalName == "files")
            .Where(e => e.Attribute("copyToOutput")?.Value == "true").Select(e => e.Attribute("include")!.Value).ToHashSet();
        foreach (var name in new[] { "model.onnx", "config.json", "genai_config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json" })
        {
            var entry = zip.GetEntry($"contentFiles/any/any/models/kjv-tiny/{name}");
            Assert.True(entry is not null, $"the package has no {name}");
            Assert.Contains($"any/any/models/kjv-tiny/{name}", copied);
            using var packed = new MemoryStream();
            using (var stream = entry!.Open()) stream.CopyTo(packed);
            Assert.Equal(File.ReadAllBytes(Path.Combine(TestPaths.RepoRoot, "models", "kjv-tiny", name)), packed.ToArray());
        }
    }
}
