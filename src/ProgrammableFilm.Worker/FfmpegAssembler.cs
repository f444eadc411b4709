using System.Globalization;
using ProgrammableFilm.Engine;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Worker;

/// <summary>
/// Encodes a shot's frames into an H.264 MP4, scaling them to the shot's size (in process when this machine's FFmpeg
/// libraries are the ones <see cref="LibavEncoder"/> knows, else with the ffmpeg program on the PNG frames), and
/// multiplies a shot's frame rate by motion-compensated interpolation with the ffmpeg program.
/// </summary>
public sealed class FfmpegAssembler(WorkerOptions options, ShotStorage storage)
{
    /// <summary>
    /// The interpolation filter: motion-compensated (<c>mci</c>) with overlapped blocks and variable-size block
    /// matching, which keeps edges of moving objects whole where plain blending (<c>mi_mode=blend</c>) doubles them.
    /// </summary>
    public const string InterpolationFilter = "minterpolate=mi_mode=mci:mc_mode=aobmc:vsbmc=1";

    /// <summary>Writes the video (default <c>shot.mp4</c>) in the shot folder and returns its path relative to the storage root.</summary>
    /// <param name="frames">The frames, already read: the in-process encoder takes them as they are.</param>
    /// <param name="metadata">Tags written into the MP4 (custom keys kept by <c>use_metadata_tags</c>).</param>
    /// <param name="framesFolder">The folder under the shot folder holding the same frames as PNGs, for the ffmpeg program: <c>frames</c>, or <c>interpolated</c>.</param>
    public async Task<string> AssembleAsync(string shotFolder, IReadOnlyList<RgbImage> frames, int fps, int width, int height, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken, string? video = null, string framesFolder = "frames")
    {
        video ??= ShotStorage.VideoPath(shotFolder);
        var target = storage.FullPath(video);
        var temporary = storage.FullPath($"{shotFolder}/shot.{Guid.NewGuid():N}.tmp.mp4");
        try
        {
            if (options.EncodeInProcess && LibavEncoder.IsAvailable)
            {
                LibavEncoder.Encode(frames, fps, width, height, metadata, temporary, cancellationToken);
            }
            else
            {
                await EncodeWithProgramAsync(shotFolder, fps, width, height, metadata, temporary, framesFolder, cancellationToken);
            }

            File.Move(temporary, target, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }

        return video;
    }

    private Task EncodeWithProgramAsync(string shotFolder, int fps, int width, int height, IReadOnlyDictionary<string, string> metadata, string temporary, string framesFolder, CancellationToken cancellationToken)
    {
        var frames = storage.FullPath($"{shotFolder}/{framesFolder}/%05d.png");
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
        return RunAsync(arguments, cancellationToken);
    }

    /// <summary>
    /// Writes <paramref name="frameCount"/> × <paramref name="factor"/> frames at <paramref name="fps"/> ×
    /// <paramref name="factor"/> into <c>interpolated/</c> under the shot folder (replacing any earlier attempt's) and
    /// returns their paths relative to the storage root. The last frame is held: cloned past the end so that
    /// minterpolate, which drops the frames it cannot look past, gives exactly the factor times as many frames and the
    /// video lasts as long as the shot.
    /// </summary>
    public async Task<IReadOnlyList<string>> InterpolateAsync(string shotFolder, int fps, int factor, int frameCount, CancellationToken cancellationToken)
    {
        var folder = $"{shotFolder}/interpolated";
        var temporary = $"{shotFolder}/interpolated.{Guid.NewGuid():N}.tmp";
        Directory.CreateDirectory(storage.FullPath(temporary));
        string[] arguments =
        [
            "-nostdin", "-y", "-v", "error",
            "-framerate", fps.ToString(CultureInfo.InvariantCulture),
            "-start_number", "0",
            "-i", storage.FullPath($"{shotFolder}/frames/%05d.png"),
            "-vf", $"tpad=stop_mode=clone:stop={factor + 2},{InterpolationFilter}:fps={fps * factor}",
            "-frames:v", (frameCount * factor).ToString(CultureInfo.InvariantCulture),
            "-pix_fmt", "rgb24",
            "-start_number", "0",
            storage.FullPath($"{temporary}/%05d.png"),
        ];
        try
        {
            await RunAsync(arguments, cancellationToken);
            if (Directory.Exists(storage.FullPath(folder)))
            {
                Directory.Delete(storage.FullPath(folder), recursive: true);
            }

            Directory.Move(storage.FullPath(temporary), storage.FullPath(folder));
        }
        finally
        {
            if (Directory.Exists(storage.FullPath(temporary)))
            {
                Directory.Delete(storage.FullPath(temporary), recursive: true);
            }
        }

        return [.. Enumerable.Range(0, frameCount * factor).Select(i => $"{folder}/{i:D5}.png")];
    }

    private async Task RunAsync(IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        FfmpegResult result;
        try
        {
            result = await Ffmpeg.RunAsync(options.FfmpegPath, arguments, cancellationToken);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new AssemblyException($"ffmpeg not found at '{options.FfmpegPath}' ({e.Message}); install it with: apt-get install -y ffmpeg");
        }

        if (result.ExitCode != 0)
        {
            throw new AssemblyException($"ffmpeg exited with {result.ExitCode}: {result.Reason}");
        }
    }
}

/// <summary>Assembly failed for a reason a retry will not fix (missing frames, bad ffmpeg).</summary>
public sealed class AssemblyException(string message) : Exception(message);
