using System.Diagnostics;
using System.Globalization;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Worker;

/// <summary>Encodes a shot's PNG frames into an H.264 MP4 with ffmpeg, scaling them to the shot's size.</summary>
public sealed class FfmpegAssembler(WorkerOptions options, ShotStorage storage)
{
    /// <summary>Writes <c>shot.mp4</c> in the shot folder and returns its path relative to the storage root.</summary>
    /// <param name="metadata">Tags written into the MP4 (custom keys kept by <c>use_metadata_tags</c>).</param>
    public async Task<string> AssembleAsync(string shotFolder, int fps, int width, int height, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken)
    {
        var video = ShotStorage.VideoPath(shotFolder);
        var target = storage.FullPath(video);
        var temporary = storage.FullPath($"{shotFolder}/shot.{Guid.NewGuid():N}.tmp.mp4");
        var frames = storage.FullPath($"{shotFolder}/frames/%05d.png");
        string[] arguments =
        [
            "-nostdin", "-y", "-v", "error",
            "-framerate", fps.ToString(CultureInfo.InvariantCulture),
            "-start_number", "0",
            "-i", frames,
            // Frames from a low-resolution engine are upscaled here; yuv420p keeps the MP4 playable everywhere.
            "-vf", $"scale={width}:{height}:flags=lanczos,format=yuv420p",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
            "-r", fps.ToString(CultureInfo.InvariantCulture),
            "-movflags", "+faststart+use_metadata_tags",
            .. metadata.SelectMany(tag => new[] { "-metadata", $"{tag.Key}={tag.Value}" }),
            temporary,
        ];
        try
        {
            await RunAsync(arguments, cancellationToken);
            File.Move(temporary, target, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }

        return video;
    }

    private async Task RunAsync(IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(options.FfmpegPath) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("ffmpeg did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new AssemblyException($"ffmpeg not found at '{options.FfmpegPath}' ({e.Message}); install it with: apt-get install -y ffmpeg");
        }

        using (process)
        {
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

            if (process.ExitCode != 0)
            {
                var message = (await errors).Trim().Split('\n').LastOrDefault() ?? "";
                throw new AssemblyException($"ffmpeg exited with {process.ExitCode}: {message}");
            }
        }
    }
}

/// <summary>Assembly failed for a reason a retry will not fix (missing frames, bad ffmpeg).</summary>
public sealed class AssemblyException(string message) : Exception(message);
