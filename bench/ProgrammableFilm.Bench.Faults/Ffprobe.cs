using System.Diagnostics;
using System.Globalization;

namespace ProgrammableFilm.Bench.Faults;

public static class Ffprobe
{
    /// <summary>Decodes the MP4 and counts its frames (not the container's claim); 0 when there is no readable video.</summary>
    public static async Task<int> CountFramesAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            return 0;
        }

        var start = new ProcessStartInfo("ffprobe") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return process.ExitCode == 0 && int.TryParse(output.Trim().TrimEnd(','), NumberStyles.Integer, CultureInfo.InvariantCulture, out var frames) ? frames : 0;
    }
}
