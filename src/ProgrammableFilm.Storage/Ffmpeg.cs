using System.Diagnostics;

namespace ProgrammableFilm.Storage;

/// <summary>How an ffmpeg run ended: its exit code and the last line it wrote to standard error (its reason).</summary>
public sealed record FfmpegResult(int ExitCode, string Reason);

/// <summary>Runs ffmpeg to the end (both the API, decoding plates, and the workers, assembling, do).</summary>
public static class Ffmpeg
{
    /// <summary>
    /// Runs <paramref name="path"/> with <paramref name="arguments"/>; a cancelled run is killed with its children
    /// rather than left writing. Throws <see cref="System.ComponentModel.Win32Exception"/> when there is no ffmpeg.
    /// </summary>
    public static async Task<FfmpegResult> RunAsync(string path, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(path) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{path} did not start");
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        _ = process.StandardOutput.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new FfmpegResult(process.ExitCode, process.ExitCode == 0 ? "" : (await errors).Trim().Split('\n').LastOrDefault() ?? "");
    }
}
