using System.Diagnostics;

namespace OnnxLM.Server.Tests;

/// <summary>The playground tests' browser: headless Chromium on a page, printing the DOM or writing a screenshot.</summary>
internal static class HeadlessChromium
{
    /// <summary>
    /// Runs Chromium with <paramref name="action"/> (<c>--dump-dom</c>, <c>--screenshot=PATH</c>) on <paramref name="page"/>
    /// in a 1280-wide window <paramref name="height"/> tall, and returns what it prints (the DOM for --dump-dom).
    /// </summary>
    public static async Task<string> RunAsync(string chromium, string action, Uri page, int height, int virtualTimeMs = 20000)
    {
        var start = new ProcessStartInfo(chromium) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", $"--window-size=1280,{height}", $"--virtual-time-budget={virtualTimeMs}", action, page.ToString()])
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        await error;
        return output;
    }
}
