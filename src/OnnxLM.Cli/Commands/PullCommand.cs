using System.CommandLine;
using OnnxLM.Hub;

namespace OnnxLM.Cli.Commands;

/// <summary><c>onnxlm pull org/name</c>: downloads a model from the Hub into the cache Python's huggingface_hub shares, only the chosen dtype's files.</summary>
internal static class PullCommand
{
    public static Command Create(CliContext cli)
    {
        var repo = new Argument<string>("repo") { Description = "The Hub repository, org/name (e.g. onnx-community/Qwen2.5-0.5B-Instruct)" };
        var revision = new Option<string>("--revision") { Description = "Branch, tag or commit sha", DefaultValueFactory = _ => "main" };
        var dtype = new Option<string?>("--dtype") { Description = $"Graph precision in an onnx-community repository: fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4 (default: the first present of {string.Join(", ", ModelHub.DefaultDtypeOrder)})" };
        var variant = new Option<string?>("--variant") { Description = "Variant folder of an ONNX Runtime GenAI repository (default: the only one, else the first for the CPU)" };
        var json = new Option<bool>("--json") { Description = "No progress bar; print the snapshot (path, repo, commit, files) as JSON" };
        var command = new Command("pull", "Download a model from the Hugging Face Hub into its cache (HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE)") { repo, revision, dtype, variant, json };
        command.SetAction((parse, ct) => cli.RunAsync(parse, async () =>
        {
            var id = parse.GetValue(repo)!;
            if (!ModelHub.IsRepoId(id)) throw new UsageException($"'{id}' is not a Hub repository: expected org/name.");
            var options = new HubDownloadOptions { Revision = parse.GetValue(revision)!, Dtype = parse.GetValue(dtype), Variant = parse.GetValue(variant) };
            var snapshot = await HubModels.PullAsync(cli, id, options, parse.GetValue(json), ct);
            if (parse.GetValue(json))
            {
                cli.Output.WriteLine(CliContext.ToJson(new
                {
                    repo = snapshot.RepoId,
                    revision = snapshot.Revision,
                    commit = snapshot.Commit,
                    path = snapshot.ModelPath,
                    snapshot = snapshot.Path,
                    dtype = snapshot.Dtype,
                    variant = snapshot.Variant,
                    files = snapshot.Files,
                    bytes_downloaded = snapshot.BytesDownloaded,
                }));
                return 0;
            }

            var chosen = snapshot.Dtype is { } d ? $" ({d})" : snapshot.Variant is { } v ? $" ({v})" : "";
            cli.Error.WriteLine($"{snapshot.RepoId}@{snapshot.Commit[..Math.Min(12, snapshot.Commit.Length)]}{chosen}: {snapshot.Files.Count} files, {snapshot.BytesDownloaded / 1e6:0.0} MB downloaded");
            cli.Output.WriteLine(snapshot.ModelPath);
            return 0;
        }));
        return command;
    }
}
