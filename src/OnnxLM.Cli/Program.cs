using OnnxLM.Cli;

return await CliApp.RunAsync(args, Console.Out, Console.Error, Console.In);

/// <summary>The tool's entry point; internal, as the ASP.NET Core framework the server brings would otherwise make it public.</summary>
internal partial class Program;
