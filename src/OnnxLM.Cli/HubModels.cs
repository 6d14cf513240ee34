using OnnxLM.Hub;
using Spectre.Console;

namespace OnnxLM.Cli;

/// <summary>Models named <c>org/name</c>: downloaded from the Hub into the shared cache (read from the HF_* variables), with a progress bar on a terminal.</summary>
internal static class HubModels
{
    /// <summary>Downloads (or finds in the cache) a repository's model; the bar goes to standard error, and only on a terminal unless <paramref name="quiet"/>.</summary>
    public static async Task<HubSnapshot> PullAsync(CliContext cli, string repoId, HubDownloadOptions options, bool quiet, CancellationToken ct)
    {
        var hub = new ModelHub();
        if (quiet || !cli.ErrorInteractive || hub.Options.Offline) return await hub.DownloadAsync(repoId, options, null, ct).ConfigureAwait(false);

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(cli.Error) });
        HubSnapshot? snapshot = null;
        await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var bar = new Bar(context, repoId);
                snapshot = await hub.DownloadAsync(repoId, options, bar, ct).ConfigureAwait(false);
                bar.Finish();
            }).ConfigureAwait(false);
        return snapshot!;
    }

    /// <summary>
    /// <c>--model org/name</c> that is no folder here: the repository's snapshot folder, downloaded when not cached (unless
    /// offline); a repository that does not exist says that the folder does not either.
    /// </summary>
    public static string Resolve(CliContext cli, string repoId)
    {
        try
        {
            return PullAsync(cli, repoId, new HubDownloadOptions(), quiet: false, CancellationToken.None).GetAwaiter().GetResult().ModelPath;
        }
        catch (HubException e) when (e.Kind is HubErrorKind.NotFound or HubErrorKind.Unauthorized or HubErrorKind.Offline)
        {
            throw new HubException(e.Kind, $"--model '{repoId}' is not a folder here; as a Hub repository: {e.Message}", e) { StatusCode = e.StatusCode };
        }
    }

    /// <summary>One bar for the whole pull and one per file, updated from the download threads.</summary>
    private sealed class Bar(ProgressContext context, string repoId) : IProgress<HubProgress>
    {
        private readonly Dictionary<string, ProgressTask> _files = [];
        private ProgressTask? _total;

        public void Report(HubProgress value)
        {
            lock (_files)
            {
                _total ??= context.AddTask(repoId, maxValue: Math.Max(1, value.BytesTotal));
                _total.Value = value.BytesDone;
                if (!_files.TryGetValue(value.File, out var file))
                {
                    _files[value.File] = file = context.AddTask("  " + Markup.Escape(value.File), maxValue: Math.Max(1, value.FileBytesTotal));
                }

                file.Value = value.FileBytesDone;
            }
        }

        public void Finish()
        {
            lock (_files)
            {
                foreach (var task in _files.Values.Append(_total)) task?.StopTask();
            }
        }
    }
}
