// Counts the types each shipped assembly makes visible outside itself (public, and public or protected nested in a
// visible type), per assembly and per namespace, from the Release build's metadata (nothing is loaded or run).
//   dotnet run build/public-types.cs                 # after dotnet build OnnxLM.sln -c Release
//   dotnet run build/public-types.cs -- --list       # also name every type
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

var root = Path.GetFullPath(Path.Combine(AppContext.GetData("EntryPointFileDirectoryPath") as string ?? ".", ".."));
string[] shipped = ["OnnxLM", "OnnxLM.Hosting", "OnnxLM.ModelBuilder", "OnnxLM.Server", "OnnxLM.Hub", "OnnxLM.Models.KjvTiny", "OnnxLM.Cli"];
var list = args.Contains("--list");
var total = 0;
foreach (var name in shipped)
{
    var path = Path.Combine(root, "src", name, "bin", "Release", "net10.0", name + ".dll");
    if (!File.Exists(path))
    {
        Console.Error.WriteLine($"{path} is missing: build OnnxLM.sln -c Release first.");
        return 1;
    }

    using var pe = new PEReader(File.OpenRead(path));
    var md = pe.GetMetadataReader();
    var byNamespace = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
    foreach (var handle in md.TypeDefinitions)
    {
        if (!IsVisible(md, handle)) continue;
        var (ns, typeName) = FullName(md, handle);
        if (!byNamespace.TryGetValue(ns, out var types)) byNamespace[ns] = types = [];
        types.Add(typeName);
    }

    var count = byNamespace.Values.Sum(t => t.Count);
    total += count;
    Console.WriteLine($"{name}: {count}");
    foreach (var (ns, types) in byNamespace)
    {
        Console.WriteLine($"  {ns,-32} {types.Count,4}");
        if (list) Console.WriteLine("      " + string.Join(", ", types.Order(StringComparer.Ordinal)));
    }
}

Console.WriteLine($"total: {total}");
return 0;

static bool IsVisible(MetadataReader md, TypeDefinitionHandle handle)
{
    var type = md.GetTypeDefinition(handle);
    var visibility = type.Attributes & TypeAttributes.VisibilityMask;
    if (!type.GetDeclaringType().IsNil)
    {
        return visibility is TypeAttributes.NestedPublic or TypeAttributes.NestedFamily or TypeAttributes.NestedFamORAssem
            && IsVisible(md, type.GetDeclaringType());
    }

    return visibility == TypeAttributes.Public;
}

static (string Namespace, string Name) FullName(MetadataReader md, TypeDefinitionHandle handle)
{
    var type = md.GetTypeDefinition(handle);
    var name = md.GetString(type.Name);
    if (type.GetDeclaringType().IsNil) return (md.GetString(type.Namespace), name);
    var (ns, outer) = FullName(md, type.GetDeclaringType());
    return (ns, outer + "." + name);
}
